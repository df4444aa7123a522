'use strict'
// Lock and Election with kazoo's node layout, so Node, C, kazoo and zkclient contenders share
// one lock: <path>/<uuid4 hex>__lock__<10-digit seq>, ephemeral sequential, ordered by the
// sequence after the marker; each contender watches only its predecessor.

const { randomUUID } = require('node:crypto')
const { CreateMode } = require('./client')
const { Code, ZkError } = require('./errors')
const { Watcher } = require('./watcher')

const MARKERS = ['__lock__', '__rlock__']

function seqKey (name) {
  for (const m of MARKERS) {
    const i = name.indexOf(m)
    if (i !== -1) return name.slice(i + m.length)
  }
  return '~' // other names sort last, as kazoo does
}

async function ensurePath (client, path) {
  let at = ''
  for (const part of path.split('/').slice(1)) {
    at += '/' + part
    try { await client.create(at) } catch (e) { if (e.code !== Code.NODE_EXISTS) throw e }
  }
}

async function retryLoss (fn) {
  for (;;) {
    try { return await fn() } catch (e) { if (e.code !== Code.CONNECTION_LOSS) throw e }
  }
}

class Lock {
  constructor (client, path, identifier = '') {
    this.client = client
    this.path = path.replace(/\/+$/, '')
    this.identifier = identifier
    this.prefix = randomUUID().replace(/-/g, '') + '__lock__'
    this.node = null
    this.isAcquired = false
  }

  async _createContender () {
    for (let attempt = 0; attempt < 20; attempt++) {
      try {
        const made = await this.client.create(`${this.path}/${this.prefix}`, this.identifier, { mode: CreateMode.EPHEMERAL_SEQUENTIAL })
        return made.slice(this.path.length + 1)
      } catch (e) {
        if (e.code === Code.NO_NODE) { await ensurePath(this.client, this.path); continue }
        if (e.code !== Code.CONNECTION_LOSS) throw e
        // The reply was lost: the node may exist; find it by our prefix, after a sync (the
        // create may have been applied by a server we are no longer connected to).
        await retryLoss(() => this.client.sync(this.path))
        const kids = await retryLoss(() => this.client.getChildren(this.path))
        const mine = kids.find(k => k.startsWith(this.prefix))
        if (mine) return mine
      }
    }
    throw new ZkError(Code.CONNECTION_LOSS, this.path)
  }

  /** Resolves true when held, false when opts.timeoutMs passed first. */
  async acquire (opts = {}) {
    const deadline = opts.timeoutMs === undefined ? Infinity : Date.now() + opts.timeoutMs
    await retryLoss(() => ensurePath(this.client, this.path))
    this.node = await this._createContender()
    try {
      for (;;) {
        const kids = (await retryLoss(() => this.client.getChildren(this.path))).slice().sort((a, b) => {
          const x = seqKey(a); const y = seqKey(b)
          return x < y ? -1 : x > y ? 1 : 0
        })
        for (const k of kids) { // orphans of a lost create carry our prefix too
          if (k !== this.node && k.startsWith(this.prefix)) await retryLoss(() => this.client.delete(`${this.path}/${k}`)).catch(() => {})
        }
        const me = kids.indexOf(this.node)
        if (me < 0) throw new ZkError(Code.NO_NODE, `${this.path}/${this.node}`) // our session's ephemeral is gone
        // As kazoo's Lock: only exclusive contenders (__lock__) come before us; readers do not.
        const pred = kids.slice(0, me).filter(k => k.includes('__lock__') && !k.startsWith(this.prefix)).pop()
        if (!pred) { this.isAcquired = true; return true }
        const watcher = new Watcher()
        const stat = await retryLoss(() => this.client.exists(`${this.path}/${pred}`, { watch: watcher }))
        if (stat === null) continue
        const left = deadline - Date.now()
        if (left <= 0) throw new ZkError(Code.OPERATION_TIMEOUT, this.path)
        // Look again at least every second: a watch can be lost with a connection.
        await watcher.next(Math.min(left, 1000)).catch(() => {})
        if (Date.now() >= deadline) throw new ZkError(Code.OPERATION_TIMEOUT, this.path)
      }
    } catch (e) {
      await this.release().catch(() => {})
      if (e.code === Code.OPERATION_TIMEOUT) return false
      throw e
    }
  }

  async release () {
    const node = this.node
    this.node = null
    this.isAcquired = false
    if (!node) return
    try { await retryLoss(() => this.client.delete(`${this.path}/${node}`)) } catch (e) { if (e.code !== Code.NO_NODE) throw e }
  }

  /** The identifiers (node data) of every contender, holder first. */
  async contenders () {
    const kids = (await this.client.getChildren(this.path)).filter(k => seqKey(k) !== '~')
    kids.sort((a, b) => (seqKey(a) < seqKey(b) ? -1 : 1))
    const out = []
    for (const k of kids) {
      try { out.push((await this.client.get(`${this.path}/${k}`)).data.toString()) } catch (e) { if (e.code !== Code.NO_NODE) throw e }
    }
    return out
  }
}

class Election {
  constructor (client, path, identifier = '') {
    this.lock = new Lock(client, path, identifier)
  }

  /** Waits to be elected, runs fn, then gives up leadership. Resolves with fn's result. */
  async run (fn, ...args) {
    await this.lock.acquire()
    try { return await fn(...args) } finally { await this.lock.release() }
  }

  cancel () { return this.lock.release() }

  contenders () { return this.lock.contenders() }
}

module.exports = { Lock, Election, seqKey }
