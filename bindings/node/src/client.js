'use strict'
// The zkpy client for Node.js: one ZeroMQ DEALER to one server at a time, failover across the
// connect string, session resume, pings, watches re-registered with setWatches2 after a
// reconnect. See ../README.md and docs/protocol.md.

const { EventEmitter } = require('node:events')
const zmq = require('zeromq')
const { Writer, Reader, Op, Xid, enc, dec } = require('./jute')
const { Code, ZkError } = require('./errors')
const { Watcher } = require('./watcher')

const CreateMode = Object.freeze({
  PERSISTENT: 0,
  EPHEMERAL: 1,
  PERSISTENT_SEQUENTIAL: 2,
  EPHEMERAL_SEQUENTIAL: 3,
  CONTAINER: 4,
  PERSISTENT_WITH_TTL: 5,
  PERSISTENT_SEQUENTIAL_WITH_TTL: 6
})
const EventType = Object.freeze({ 1: 'created', 2: 'deleted', 3: 'dataChanged', 4: 'childrenChanged' })
const WatcherType = Object.freeze({ children: 1, data: 2, any: 3, persistent: 4, persistentRecursive: 5 })
const SOCKET_CLOSED = Symbol('socket closed')
// Requests sent and not yet answered, at most (as zkclient's): the rest wait in the queue, so a
// bulk load of async calls is never more than the server takes from one client (10,000).
const IN_FLIGHT_MAX = 1000

function parseConnect (connect) {
  if (typeof connect !== 'string' || !connect.trim()) throw new TypeError(`connect string must list endpoints, got ${JSON.stringify(connect)}`)
  return connect.split(',').map(s => s.trim()).filter(Boolean).map(s => (s.includes('://') ? s : `tcp://${s}`))
}

function checkPath (path) {
  if (typeof path !== 'string' || !path.startsWith('/')) throw new ZkError(Code.BAD_ARGUMENTS, String(path))
}

function toBuffer (data) {
  if (data === undefined || data === null) return Buffer.alloc(0)
  return Buffer.isBuffer(data) ? data : Buffer.from(String(data))
}

function ancestorOrSelf (anc, path) {
  return anc === '/' || path === anc || path.startsWith(anc + '/')
}

class Client extends EventEmitter {
  /**
   * @param {string} connect comma-separated endpoints (tcp://h:p, ipc://path, h:p)
   * @param {{timeoutMs?: number, sessionId?: bigint, passwd?: Buffer}} [opts]
   */
  constructor (connect, opts = {}) {
    super()
    this.endpoints = parseConnect(connect)
    this.timeoutMs = opts.timeoutMs || 10000
    this.negotiatedMs = this.timeoutMs
    this.sessionId = opts.sessionId || 0n
    this.passwd = opts.passwd || Buffer.alloc(16)
    this.lastZxid = 0n
    this.state = 'disconnected'
    this.endpoint = null
    this._epIdx = Math.floor(Math.random() * this.endpoints.length)
    this._xid = 1
    this._outq = []
    this._sent = []
    this._watches = [] // { kind, path, watcher }
    this._sock = null
    this._closing = false
    this._sendChain = Promise.resolve()
    this._loop = null
    this._wakeConnect = null
  }

  /** Connects (creating or resuming the session); resolves once connected. */
  async connect () {
    if (this._loop) throw new ZkError(Code.API_ERROR, 'connect() called twice')
    const connected = new Promise((resolve, reject) => {
      const onState = (s) => {
        if (s === 'connected') { cleanup(); resolve(this) } else if (s === 'expired' || s === 'closed') { cleanup(); reject(new ZkError(s === 'expired' ? Code.SESSION_EXPIRED : Code.CONNECTION_LOSS)) }
      }
      const timer = setTimeout(() => { cleanup(); reject(new ZkError(Code.CONNECTION_LOSS, 'no server took the session in time')) }, this.timeoutMs * 2 + 1000)
      const cleanup = () => { clearTimeout(timer); this.off('state', onState) }
      this.on('state', onState)
    })
    this._loop = this._run()
    try {
      return await connected
    } catch (e) {
      await this._stop(false)
      throw e
    }
  }

  _setState (s) {
    if (this.state === s) return
    this.state = s
    if (s !== 'connected') this.endpoint = null
    this.emit('state', s)
    this.emit(s)
  }

  async _run () {
    while (!this._closing) {
      this._setState('connecting')
      const rc = await this._reconnect()
      if (rc === 'expired') {
        this._failAll(Code.SESSION_EXPIRED)
        for (const w of new Set(this._watches.map(x => x.watcher))) w._end()
        this._setState('expired')
        return
      }
      if (rc !== 'connected') break
      this._sendSetWatches()
      this._setState('connected')
      this._flush()
      const why = await this._serve()
      this._closeSocket()
      this._failSent(this._closing ? Code.CLOSING : Code.CONNECTION_LOSS)
      if (why === 'closing') break
    }
    this._failAll(Code.CLOSING)
    for (const w of new Set(this._watches.map(x => x.watcher))) w._end()
    if (this.state !== 'expired') this._setState('closed')
  }

  _closeSocket () {
    if (this._sock) { try { this._sock.close() } catch (_) {} }
    this._sock = null
    if (this._signalClosed) { this._signalClosed(SOCKET_CLOSED); this._signalClosed = null }
    this._sendChain = Promise.resolve()
    if (this._pinger) { clearInterval(this._pinger); this._pinger = null }
  }

  // Sends are chained (a zeromq socket takes one at a time). A frame that cannot be sent would
  // leave its request unanswered, so a failed send closes the socket: the connection is lost.
  _send (frame) {
    const sock = this._sock
    if (!sock) return
    this._lastSend = Date.now()
    this._sendChain = this._sendChain.then(() => sock.send(frame)).catch(() => {
      if (this._sock === sock) this._closeSocket()
    })
  }

  // A receive that ends when the socket is closed by us, whether or not zeromq settles it then
  // (a receive pending on a closed socket may never settle, and then nothing keeps Node's event
  // loop running).
  async _receive (sock) {
    const pending = sock.receive()
    pending.catch(() => {})
    const got = await Promise.race([pending, this._closed])
    if (got === SOCKET_CLOSED) throw Object.assign(new Error('socket closed'), { code: 'ECLOSED' })
    return got
  }

  async _reconnect () {
    let backoff = 50
    for (;;) {
      for (let i = 0; i < this.endpoints.length; i++) {
        if (this._closing) return 'closing'
        const ep = this.endpoints[this._epIdx]
        this._epIdx = (this._epIdx + 1) % this.endpoints.length
        const rc = await this._connectOnce(ep)
        if (rc !== 'next') return rc
        this._failStale()
      }
      await new Promise(resolve => { const t = setTimeout(resolve, backoff); this._wakeConnect = () => { clearTimeout(t); resolve() } })
      this._wakeConnect = null
      backoff = Math.min(backoff * 2, 1000)
    }
  }

  async _connectOnce (ep) {
    // No high-water marks: the server bounds what a client may have outstanding (10,000).
    const sock = new zmq.Dealer({ linger: 0, sendHighWaterMark: 0, receiveHighWaterMark: 0 })
    this._sock = sock
    this._closed = new Promise(resolve => { this._signalClosed = resolve })
    const wait = Math.max(500, Math.floor((this.sessionId ? this.negotiatedMs : this.timeoutMs) * 2 / 3))
    sock.receiveTimeout = wait
    sock.sendTimeout = wait
    try {
      sock.connect(ep)
      const w = new Writer()
      enc.connect(w, { lastZxid: this.lastZxid, timeoutMs: this.timeoutMs, sessionId: this.sessionId, passwd: this.passwd })
      await sock.send(w.toBuffer())
      const [frame] = await this._receive(sock)
      if (frame.length === 0) { this._closeSocket(); return 'next' }
      const cr = dec.connectResponse(new Reader(frame))
      if (cr.timeoutMs <= 0 || cr.sessionId === 0n) { this._closeSocket(); return 'expired' }
      this.sessionId = cr.sessionId
      this.passwd = cr.passwd
      this.negotiatedMs = cr.timeoutMs
      this.endpoint = ep
      this._lastRecv = Date.now()
      this._lastSend = Date.now()
      return 'connected'
    } catch (e) {
      this._closeSocket()
      return this._closing ? 'closing' : 'next'
    }
  }

  _sendSetWatches () {
    const lists = { data: [], exist: [], child: [], persistent: [], persistentRecursive: [] }
    for (const w of this._watches) if (!lists[w.kind].includes(w.path)) lists[w.kind].push(w.path)
    if (!Object.values(lists).some(l => l.length)) return
    const w = new Writer()
    enc.header(w, Xid.setWatches, Op.setWatches2)
    enc.setWatches2(w, this.lastZxid, lists)
    this._send(w.toBuffer())
  }

  _flush () {
    if (this.state !== 'connected') return
    while (this._outq.length && this._sent.length < IN_FLIGHT_MAX) {
      const r = this._outq.shift()
      this._sent.push(r)
      this._send(r.frame)
      r.frame = null
    }
  }

  async _serve () {
    const sock = this._sock
    const third = Math.floor(this.negotiatedMs / 3)
    this._pinger = setInterval(() => {
      if (Date.now() - this._lastSend >= third) {
        const w = new Writer()
        enc.header(w, Xid.ping, Op.ping)
        this._send(w.toBuffer())
      }
    }, Math.max(50, Math.floor(third / 4)))
    for (;;) {
      if (this._closing) return 'closing'
      const left = this._lastRecv + 2 * third - Date.now()
      if (left <= 0) return 'silent'
      sock.receiveTimeout = left
      let frame
      try {
        [frame] = await this._receive(sock)
      } catch (e) {
        if (this._closing) return 'closing'
        if (e.code === 'EAGAIN') continue
        return 'error'
      }
      this._lastRecv = Date.now()
      if (this._handle(frame) === 'drop') return 'dropped'
    }
  }

  _handle (frame) {
    if (frame.length === 0) return 'drop'
    let r, h
    try {
      r = new Reader(frame)
      h = dec.replyHeader(r)
    } catch (_) { return 'drop' }
    if (h.zxid > this.lastZxid) this.lastZxid = h.zxid
    if (h.xid === Xid.watch) {
      let ev
      try { ev = dec.watcherEvent(r) } catch (_) { return 'drop' }
      this._dispatch(ev.type, ev.path, h.zxid)
      return 'ok'
    }
    if (h.xid === Xid.ping || h.xid === Xid.setWatches || h.xid === Xid.auth) return 'ok'
    if (this._closeXid !== undefined && h.xid === this._closeXid) { this._closeAnswered && this._closeAnswered(); return 'ok' }
    const req = this._sent[0]
    if (!req || req.xid !== h.xid) return 'drop'
    this._sent.shift()
    this._complete(req, h.err, r)
    if (this._outq.length) this._flush()
    return 'ok'
  }

  _complete (req, err, r) {
    let value
    if (err === 0 && r) {
      try { value = req.decode ? req.decode(r) : undefined } catch (_) { err = Code.MARSHALLING_ERROR }
    }
    if (req.watch && (err === 0 || (req.op === Op.exists && err === Code.NO_NODE))) {
      const kind = req.op === Op.exists && err === Code.NO_NODE ? 'exist' : req.watch.kind
      this._addWatch(kind, req.path, req.watch.watcher)
    }
    if (req.op === Op.removeWatches && err === 0) this._removeLocal(req.path, req.removeType)
    if (req.op === Op.exists && err === Code.NO_NODE) return req.resolve(null)
    if (req.op === Op.multi && err === 0) {
      let i = value.findIndex(x => x.err !== 0 && x.err !== Code.RUNTIME_INCONSISTENCY)
      if (i < 0) i = value.findIndex(x => x.err !== 0)
      if (i >= 0) return req.reject(new ZkError(value[i].err, req.opPaths[i], value))
    }
    if (err !== 0) return req.reject(new ZkError(err, req.path))
    req.resolve(value)
  }

  _addWatch (kind, path, watcher) {
    watcher._reopen()
    if (this._watches.some(w => w.kind === kind && w.path === path && w.watcher === watcher)) return
    this._watches.push({ kind, path, watcher })
  }

  _removeLocal (path, type) {
    const kinds = { 1: ['child'], 2: ['data', 'exist'], 3: ['data', 'exist', 'child', 'persistent', 'persistentRecursive'], 4: ['persistent'], 5: ['persistentRecursive'] }[type]
    const gone = this._watches.filter(w => w.path === path && kinds.includes(w.kind))
    this._watches = this._watches.filter(w => !gone.includes(w))
    for (const w of new Set(gone.map(g => g.watcher))) if (!this._watches.some(x => x.watcher === w)) w._end()
  }

  _dispatch (type, path, zxid) {
    const name = EventType[type] || String(type)
    const fire = new Set()
    const keep = []
    for (const w of this._watches) {
      let hit
      if (w.kind === 'persistentRecursive') hit = type !== 4 && ancestorOrSelf(w.path, path)
      else if (w.path !== path) hit = false
      else if (w.kind === 'data' || w.kind === 'exist') hit = type !== 4
      else if (w.kind === 'child') hit = type === 4 || type === 2
      else hit = true
      if (hit) fire.add(w.watcher)
      if (!hit || w.kind === 'persistent' || w.kind === 'persistentRecursive') keep.push(w)
    }
    this._watches = keep
    const event = { type: name, path, zxid }
    for (const w of fire) w._fire(event, !this._watches.some(x => x.watcher === w))
    this.emit('watch', event)
  }

  // A request waits at most one session timeout for a connection, then rejects with
  // ConnectionLoss (it was never sent). The queue is in request order: stale ones lead.
  _failStale () {
    const cutoff = Date.now() - this.negotiatedMs
    while (this._outq.length && this._outq[0].queuedAt < cutoff) {
      const r = this._outq.shift()
      r.reject(new ZkError(Code.CONNECTION_LOSS, r.path))
    }
  }

  _failSent (code) {
    const sent = this._sent
    this._sent = []
    for (const r of sent) r.reject(new ZkError(code, r.path))
  }

  _failAll (code) {
    this._failSent(code)
    const q = this._outq
    this._outq = []
    for (const r of q) r.reject(new ZkError(code, r.path))
  }

  /** Queues a request; resolves with its decoded answer. */
  _request (op, path, encodeBody, decode, extra = {}) {
    if (this._closing || this.state === 'closed') return Promise.reject(new ZkError(Code.CLOSING, path))
    if (this.state === 'expired') return Promise.reject(new ZkError(Code.SESSION_EXPIRED, path))
    return new Promise((resolve, reject) => {
      const xid = this._xid
      this._xid = this._xid >= 0x7fffffff ? 1 : this._xid + 1
      const w = new Writer()
      enc.header(w, xid, op)
      encodeBody(w)
      this._outq.push({ xid, op, path, frame: w.toBuffer(), decode, resolve, reject, queuedAt: Date.now(), ...extra })
      this._flush()
    })
  }

  _watchOpt (watch, kind) {
    if (!watch) return null
    const watcher = watch instanceof Watcher ? watch : new Watcher(typeof watch === 'function' ? watch : null)
    return { kind, watcher }
  }

  // ---- operations ----

  /** Creates a node; resolves with its path (with the sequence suffix for sequential modes). */
  async create (path, data, opts = {}) {
    return (await this.create2(path, data, opts)).path
  }

  /** As create, resolving with { path, stat }. opts: { mode, ttl }. */
  create2 (path, data, opts = {}) {
    checkPath(path)
    const mode = opts.mode ?? CreateMode.PERSISTENT
    if (!Number.isInteger(mode) || mode < 0 || mode > 6) throw new ZkError(Code.BAD_ARGUMENTS, `mode ${mode}`)
    const ttl = mode === 5 || mode === 6 ? BigInt(opts.ttl ?? 0) : undefined
    const op = mode === CreateMode.CONTAINER ? Op.createContainer : ttl !== undefined ? Op.createTTL : Op.create2
    return this._request(op, path, w => enc.create(w, path, toBuffer(data), mode, undefined, ttl), r => ({ path: r.string(), stat: r.stat() }))
  }

  delete (path, version = -1) {
    checkPath(path)
    return this._request(Op.delete, path, w => enc.delete(w, path, version), null)
  }

  /** Resolves with the Stat, or null when the node does not exist. opts.watch: true, a function or a Watcher. */
  exists (path, opts = {}) {
    checkPath(path)
    const watch = this._watchOpt(opts.watch, 'data')
    const p = this._request(Op.exists, path, w => enc.pathWatch(w, path, !!watch), r => r.stat(), { watch })
    return watch && opts.watch === true ? p.then(stat => ({ stat, watcher: watch.watcher })) : p
  }

  /** Resolves with { data: Buffer, stat } (and watcher when opts.watch is true). */
  get (path, opts = {}) {
    checkPath(path)
    const watch = this._watchOpt(opts.watch, 'data')
    return this._request(Op.getData, path, w => enc.pathWatch(w, path, !!watch), r => {
      const out = { data: r.buffer(), stat: r.stat() }
      if (watch && opts.watch === true) out.watcher = watch.watcher
      return out
    }, { watch })
  }

  set (path, data, version = -1) {
    checkPath(path)
    return this._request(Op.setData, path, w => enc.setData(w, path, toBuffer(data), version), r => r.stat())
  }

  /** Resolves with the child names (and { children, stat, watcher } when opts.stat or opts.watch === true). */
  getChildren (path, opts = {}) {
    checkPath(path)
    const watch = this._watchOpt(opts.watch, 'child')
    return this._request(Op.getChildren2, path, w => enc.pathWatch(w, path, !!watch), r => {
      const children = r.strings()
      const stat = r.stat()
      if (opts.stat || opts.watch === true) return { children, stat, watcher: watch && watch.watcher }
      return children
    }, { watch })
  }

  sync (path) {
    checkPath(path)
    return this._request(Op.sync, path, w => enc.path(w, path), r => r.string())
  }

  /**
   * Runs ops all or nothing. ops: { op: 'create'|'delete'|'set'|'check', path, data, mode, version }.
   * Resolves with one result per op ({ path } for create, { stat } for set, {} otherwise); rejects
   * with the failing op's ZkError, whose .results hold every op's { err }.
   */
  multi (ops) {
    const types = { create: Op.create, delete: Op.delete, set: Op.setData, check: Op.check }
    const wire = ops.map(o => {
      if (!(o.op in types)) throw new ZkError(Code.BAD_ARGUMENTS, `unknown multi op ${o.op}`)
      checkPath(o.path)
      return { type: types[o.op], path: o.path, data: toBuffer(o.data), flags: o.mode || 0, version: o.version ?? -1 }
    })
    const opPaths = wire.map(o => o.path)
    return this._request(Op.multi, opPaths[0] || '/', w => enc.multi(w, wire), r => dec.multi(r), { opPaths })
  }

  /** A watch that stays: mode 'persistent' or 'persistentRecursive'. Resolves with its Watcher. */
  async addWatch (path, mode = 'persistent', watcher) {
    checkPath(path)
    const code = { persistent: 0, persistentRecursive: 1 }[mode]
    if (code === undefined) throw new ZkError(Code.BAD_ARGUMENTS, `addWatch mode ${mode}`)
    const w = watcher instanceof Watcher ? watcher : new Watcher(typeof watcher === 'function' ? watcher : null)
    await this._request(Op.addWatch, path, b => enc.pathInt(b, path, code), null, { watch: { kind: mode, watcher: w } })
    return w
  }

  /** type: 'children' | 'data' | 'any' | 'persistent' | 'persistentRecursive'. */
  removeWatches (path, type = 'any') {
    checkPath(path)
    const code = WatcherType[type]
    if (!code) throw new ZkError(Code.BAD_ARGUMENTS, `watcher type ${type}`)
    return this._request(Op.removeWatches, path, w => enc.pathInt(w, path, code), null, { removeType: code })
  }

  /** Ends the session (its ephemerals go) and the connection. */
  async close () { await this._stop(true) }

  /** Drops the connection but leaves the session to expire on its own (or to be resumed). */
  async detach () { await this._stop(false) }

  async _stop (endSession) {
    if (this._closing) { if (this._loop) await this._loop; return }
    if (endSession && this.state === 'connected' && this._sock) {
      this._closeXid = this._xid
      const w = new Writer()
      enc.header(w, this._closeXid, Op.closeSession)
      const answered = new Promise(resolve => {
        this._closeAnswered = resolve
        setTimeout(resolve, 3000).unref()
      })
      this._send(w.toBuffer())
      await answered
    }
    this._closing = true
    if (this._wakeConnect) this._wakeConnect()
    this._closeSocket()
    if (this._loop) await this._loop
  }
}

module.exports = { Client, CreateMode, EventType, WatcherType }
