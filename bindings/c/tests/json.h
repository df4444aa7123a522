/* json.h: just enough JSON to read docs/protocol-vectors.json and tests/conformance/scenarios.json. */
#ifndef ZKPY_TEST_JSON_H
#define ZKPY_TEST_JSON_H
#include <stdint.h>

enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };
typedef struct jv {
    int type;
    int64_t num; /* J_NUM (integers only) and J_BOOL */
    char *str;   /* J_STR */
    int n;       /* J_ARR, J_OBJ */
    struct jv **items;
    char **keys; /* J_OBJ */
} jv;

jv *json_parse(const char *text);
jv *json_load(const char *path);
void json_free(jv *v);
jv *jget(const jv *obj, const char *key); /* NULL if missing or not an object */
int64_t jnum(const jv *obj, const char *key, int64_t dflt);
const char *jstr(const jv *obj, const char *key, const char *dflt);
#endif
