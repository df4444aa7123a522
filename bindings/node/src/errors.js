'use strict'
// ZooKeeper's error codes (docs/protocol.md), one ZkError class carrying the code.

const Code = Object.freeze({
  OK: 0,
  SYSTEM_ERROR: -1,
  RUNTIME_INCONSISTENCY: -2,
  CONNECTION_LOSS: -4,
  MARSHALLING_ERROR: -5,
  UNIMPLEMENTED: -6,
  OPERATION_TIMEOUT: -7,
  BAD_ARGUMENTS: -8,
  API_ERROR: -100,
  NO_NODE: -101,
  NO_AUTH: -102,
  BAD_VERSION: -103,
  NO_CHILDREN_FOR_EPHEMERALS: -108,
  NODE_EXISTS: -110,
  NOT_EMPTY: -111,
  SESSION_EXPIRED: -112,
  INVALID_ACL: -114,
  AUTH_FAILED: -115,
  CLOSING: -116,
  SESSION_MOVED: -118,
  NO_WATCHER: -121,
  THROTTLED: -127
})

const MESSAGES = {
  [-1]: 'system error',
  [-2]: 'runtime inconsistency (another op of the multi failed)',
  [-4]: 'connection loss (the request may or may not have taken effect)',
  [-5]: 'marshalling error',
  [-6]: 'unimplemented',
  [-7]: 'operation timeout',
  [-8]: 'bad arguments',
  [-100]: 'api error',
  [-101]: 'no node',
  [-102]: 'not authenticated',
  [-103]: 'bad version',
  [-108]: 'no children for ephemerals',
  [-110]: 'node exists',
  [-111]: 'not empty',
  [-112]: 'session expired',
  [-114]: 'invalid ACL',
  [-115]: 'authentication failed',
  [-116]: 'client closing',
  [-118]: 'session moved',
  [-121]: 'no watcher',
  [-127]: 'throttled'
}

const NAMES = Object.fromEntries(Object.entries(Code).map(([k, v]) => [v, k]))

class ZkError extends Error {
  constructor (code, path, results) {
    const msg = MESSAGES[code] || `error ${code}`
    super(path ? `${msg}: ${path}` : msg)
    this.name = 'ZkError'
    this.code = code
    this.codeName = NAMES[code] || String(code)
    this.path = path
    if (results) this.results = results
  }
}

module.exports = { Code, ZkError, MESSAGES }
