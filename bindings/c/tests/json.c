/* json.c: a small recursive-descent JSON reader for the tests (integers, no floats). */
#include "json.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { const char *p; int bad; } js;

static void ws(js *s) { while (isspace((unsigned char)*s->p)) s->p++; }

static jv *node(int type) {
    jv *v = calloc(1, sizeof *v);
    if (v) v->type = type;
    return v;
}

static char *parse_str(js *s) {
    if (*s->p != '"') { s->bad = 1; return NULL; }
    s->p++;
    size_t cap = 16, n = 0;
    char *out = malloc(cap);
    while (*s->p && *s->p != '"') {
        char c = *s->p++;
        if (c == '\\') {
            char e = *s->p++;
            switch (e) {
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'u': {
                unsigned code = 0;
                sscanf(s->p, "%4x", &code);
                s->p += 4;
                c = (char)(code < 0x80 ? code : '?');
                break;
            }
            default: c = e;
            }
        }
        if (n + 2 > cap) out = realloc(out, cap *= 2);
        out[n++] = c;
    }
    if (*s->p != '"') s->bad = 1;
    else s->p++;
    out[n] = 0;
    return out;
}

static jv *parse_value(js *s);

static jv *parse_container(js *s, int type) {
    jv *v = node(type);
    char close = type == J_ARR ? ']' : '}';
    s->p++;
    ws(s);
    if (*s->p == close) { s->p++; return v; }
    for (;;) {
        ws(s);
        char *key = NULL;
        if (type == J_OBJ) {
            key = parse_str(s);
            ws(s);
            if (*s->p != ':') { s->bad = 1; free(key); return v; }
            s->p++;
        }
        jv *item = parse_value(s);
        v->items = realloc(v->items, sizeof(jv *) * (size_t)(v->n + 1));
        if (type == J_OBJ) v->keys = realloc(v->keys, sizeof(char *) * (size_t)(v->n + 1)), v->keys[v->n] = key;
        v->items[v->n++] = item;
        if (s->bad) return v;
        ws(s);
        if (*s->p == ',') { s->p++; continue; }
        if (*s->p == close) { s->p++; return v; }
        s->bad = 1;
        return v;
    }
}

static jv *parse_value(js *s) {
    ws(s);
    char c = *s->p;
    if (c == '{') return parse_container(s, J_OBJ);
    if (c == '[') return parse_container(s, J_ARR);
    if (c == '"') { jv *v = node(J_STR); v->str = parse_str(s); return v; }
    if (!strncmp(s->p, "true", 4)) { s->p += 4; jv *v = node(J_BOOL); v->num = 1; return v; }
    if (!strncmp(s->p, "false", 5)) { s->p += 5; return node(J_BOOL); }
    if (!strncmp(s->p, "null", 4)) { s->p += 4; return node(J_NULL); }
    if (c == '-' || isdigit((unsigned char)c)) {
        jv *v = node(J_NUM);
        char *end;
        v->num = strtoll(s->p, &end, 10);
        s->p = end;
        return v;
    }
    s->bad = 1;
    return node(J_NULL);
}

jv *json_parse(const char *text) {
    js s = {text, 0};
    jv *v = parse_value(&s);
    if (s.bad) { json_free(v); return NULL; }
    return v;
}

jv *json_load(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)n + 1);
    size_t got = fread(text, 1, (size_t)n, f);
    fclose(f);
    text[got] = 0;
    jv *v = json_parse(text);
    free(text);
    return v;
}

void json_free(jv *v) {
    if (!v) return;
    for (int i = 0; i < v->n; i++) {
        json_free(v->items[i]);
        if (v->keys) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->str);
    free(v);
}

jv *jget(const jv *o, const char *key) {
    if (!o || o->type != J_OBJ) return NULL;
    for (int i = 0; i < o->n; i++)
        if (!strcmp(o->keys[i], key)) return o->items[i];
    return NULL;
}

int64_t jnum(const jv *o, const char *key, int64_t dflt) {
    jv *v = jget(o, key);
    return v && (v->type == J_NUM || v->type == J_BOOL) ? v->num : dflt;
}

const char *jstr(const jv *o, const char *key, const char *dflt) {
    jv *v = jget(o, key);
    return v && v->type == J_STR ? v->str : dflt;
}
