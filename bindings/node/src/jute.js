'use strict'
// ZooKeeper's jute record layout (big-endian) for zkpy's wire protocol (docs/protocol.md).

class MarshallingError extends Error {}

class Writer {
  constructor () { this.parts = []; this.length = 0 }
  _push (b) { this.parts.push(b); this.length += b.length; return this }
  int (v) { const b = Buffer.alloc(4); b.writeInt32BE(v); return this._push(b) }
  long (v) { const b = Buffer.alloc(8); b.writeBigInt64BE(BigInt(v)); return this._push(b) }
  bool (v) { return this._push(Buffer.from([v ? 1 : 0])) }
  buffer (v) {
    if (v === null || v === undefined) return this.int(-1)
    const b = Buffer.isBuffer(v) ? v : Buffer.from(v)
    this.int(b.length)
    return this._push(b)
  }
  string (s) { return this.buffer(s === null || s === undefined ? null : Buffer.from(s, 'utf8')) }
  strings (list) { this.int(list.length); for (const s of list) this.string(s); return this }
  toBuffer () { return Buffer.concat(this.parts, this.length) }
}

class Reader {
  constructor (buf) { this.buf = buf; this.off = 0 }
  _take (n) {
    if (n < 0 || this.off + n > this.buf.length) throw new MarshallingError(`frame too short: need ${n} bytes at ${this.off} of ${this.buf.length}`)
    const s = this.buf.subarray(this.off, this.off + n)
    this.off += n
    return s
  }
  int () { return this._take(4).readInt32BE(0) }
  long () { return this._take(8).readBigInt64BE(0) }
  bool () {
    const v = this._take(1)[0]
    if (v > 1) throw new MarshallingError(`bool must be 0 or 1, got ${v}`)
    return v === 1
  }
  buffer () {
    const n = this.int()
    if (n < -1) throw new MarshallingError(`buffer length must be >= -1, got ${n}`)
    return n <= 0 ? Buffer.alloc(0) : Buffer.from(this._take(n))
  }
  string () { return this.buffer().toString('utf8') }
  strings () {
    const n = this.int()
    if (n < 0 || n * 4 > this.buf.length - this.off) throw new MarshallingError(`bad vector length ${n}`)
    const out = []
    for (let i = 0; i < n; i++) out.push(this.string())
    return out
  }
  stat () {
    return {
      czxid: this.long(), mzxid: this.long(), ctime: this.long(), mtime: this.long(),
      version: this.int(), cversion: this.int(), aversion: this.int(),
      ephemeralOwner: this.long(), dataLength: this.int(), numChildren: this.int(), pzxid: this.long()
    }
  }
  done () { return this.off === this.buf.length }
}

const Op = Object.freeze({
  create: 1, delete: 2, exists: 3, getData: 4, setData: 5, getACL: 6, setACL: 7, getChildren: 8,
  sync: 9, ping: 11, getChildren2: 12, check: 13, multi: 14, create2: 15, removeWatches: 18,
  createContainer: 19, createTTL: 21, setWatches: 101, setWatches2: 105, addWatch: 106, auth: 100,
  closeSession: -11
})
const Xid = Object.freeze({ watch: -1, ping: -2, auth: -4, setWatches: -8 })
const OPEN_ACL = [{ perms: 31, scheme: 'world', id: 'anyone' }]

function encAcl (w, acl) {
  w.int(acl.length)
  for (const a of acl) { w.int(a.perms); w.string(a.scheme); w.string(a.id) }
}

const enc = {
  connect (w, { lastZxid = 0n, timeoutMs, sessionId = 0n, passwd }) {
    w.int(0).long(lastZxid).int(timeoutMs).long(sessionId).buffer(passwd || Buffer.alloc(16)).bool(false)
  },
  header (w, xid, type) { w.int(xid).int(type) },
  create (w, path, data, flags, acl = OPEN_ACL, ttl) {
    w.string(path).buffer(data || Buffer.alloc(0))
    encAcl(w, acl)
    w.int(flags)
    if (ttl !== undefined) w.long(ttl)
  },
  pathWatch (w, path, watch) { w.string(path).bool(watch) },
  delete (w, path, version) { w.string(path).int(version) },
  setData (w, path, data, version) { w.string(path).buffer(data || Buffer.alloc(0)).int(version) },
  path (w, path) { w.string(path) },
  pathInt (w, path, v) { w.string(path).int(v) },
  setACL (w, path, acl, version) { w.string(path); encAcl(w, acl); w.int(version) },
  auth (w, scheme, auth) { w.int(0).string(scheme).buffer(auth) },
  setWatches2 (w, relativeZxid, lists) {
    w.long(relativeZxid)
    for (const k of ['data', 'exist', 'child', 'persistent', 'persistentRecursive']) w.strings(lists[k] || [])
  },
  // ops: [{ type, path, data, flags, version, ttl }]
  multi (w, ops) {
    for (const op of ops) {
      w.int(op.type).bool(false).int(-1)
      if (op.type === Op.create || op.type === Op.create2 || op.type === Op.createContainer) enc.create(w, op.path, op.data, op.flags || 0, op.acl)
      else if (op.type === Op.createTTL) enc.create(w, op.path, op.data, op.flags, op.acl, op.ttl)
      else if (op.type === Op.setData) enc.setData(w, op.path, op.data, op.version ?? -1)
      else enc.delete(w, op.path, op.version ?? -1)
    }
    w.int(-1).bool(true).int(-1)
  }
}

const dec = {
  connectResponse (r) {
    const out = { protocolVersion: r.int(), timeoutMs: r.int(), sessionId: r.long(), passwd: r.buffer(), readOnly: false }
    if (!r.done()) out.readOnly = r.bool()
    return out
  },
  replyHeader (r) { return { xid: r.int(), zxid: r.long(), err: r.int() } },
  watcherEvent (r) { return { type: r.int(), state: r.int(), path: r.string() } },
  multi (r) {
    const results = []
    for (;;) {
      const type = r.int()
      const done = r.bool()
      r.int()
      if (done) break
      if (type === -1) { results.push({ err: r.int() }); continue }
      const res = { err: 0, type }
      if (type === Op.create) res.path = r.string()
      else if (type === Op.create2 || type === Op.createContainer || type === Op.createTTL) { res.path = r.string(); res.stat = r.stat() } else if (type === Op.setData) res.stat = r.stat()
      results.push(res)
    }
    return results
  }
}

module.exports = { Writer, Reader, MarshallingError, Op, Xid, OPEN_ACL, enc, dec }
