'use strict'
// The Node binding against a live ensemble (ZKPY_CONNECT; `npm test` starts one).

const test = require('node:test')
const assert = require('node:assert/strict')
const { connect, Client, CreateMode, Code, Lock, Election, Watcher } = require('../src')
const { connectString, killEndpoint, nodeCommand } = require('../scripts/env')

const TIMEOUT_MS = 6000
const ROOT = `/node-${process.pid}`
const open = (opts = {}) => connect(connectString(), { timeoutMs: TIMEOUT_MS, ...opts })
const rejectsWith = (p, code) => assert.rejects(p, (e) => { assert.equal(e.code, code, e.message); return true })

test.before(async () => {
  const c = await open()
  await c.create(ROOT)
  await c.close()
})

test('create/get/set/delete/exists and their errors', async () => {
  const c = await open()
  const base = `${ROOT}/crud`
  await c.create(base)
  assert.equal(await c.create(`${base}/a`, 'one'), `${base}/a`)
  await rejectsWith(c.create(`${base}/a`, 'x'), Code.NODE_EXISTS)
  const { data, stat } = await c.get(`${base}/a`)
  assert.equal(data.toString(), 'one')
  assert.equal(stat.version, 0)
  assert.equal((await c.set(`${base}/a`, 'two', 0)).version, 1)
  await rejectsWith(c.set(`${base}/a`, 'three', 0), Code.BAD_VERSION)
  assert.equal((await c.exists(`${base}/a`)).dataLength, 3)
  assert.equal(await c.exists(`${base}/nope`), null)
  await rejectsWith(c.get(`${base}/nope`), Code.NO_NODE)
  await c.create(`${base}/a/b`)
  await rejectsWith(c.delete(`${base}/a`), Code.NOT_EMPTY)
  await rejectsWith(c.delete(`${base}/a/b`, 5), Code.BAD_VERSION)
  await c.delete(`${base}/a/b`, 0)
  await c.delete(`${base}/a`)
  await rejectsWith(c.delete(`${base}/a`), Code.NO_NODE)
  await rejectsWith(c.create(`${base}/x/y`), Code.NO_NODE)
  assert.throws(() => c.create2('bad'), (e) => e.code === Code.BAD_ARGUMENTS)
  const err = await c.get(`${base}/nope`).catch(e => e)
  assert.match(err.message, /no node/)
  assert.equal(err.codeName, 'NO_NODE')
  await c.close()
})

test('every create mode', async () => {
  const c = await open()
  const base = `${ROOT}/modes`
  await c.create(base)
  const e = await c.create2(`${base}/e`, null, { mode: CreateMode.EPHEMERAL })
  assert.equal(e.stat.ephemeralOwner, c.sessionId)
  await rejectsWith(c.create(`${base}/e/child`), Code.NO_CHILDREN_FOR_EPHEMERALS)
  const s1 = await c.create(`${base}/s-`, null, { mode: CreateMode.PERSISTENT_SEQUENTIAL })
  assert.match(s1, /\/s-\d{10}$/)
  const s2 = await c.create(`${base}/s-`, null, { mode: CreateMode.EPHEMERAL_SEQUENTIAL })
  assert.ok(s2 > s1)
  await c.create(`${base}/c`, null, { mode: CreateMode.CONTAINER })
  await c.create(`${base}/t`, null, { mode: CreateMode.PERSISTENT_WITH_TTL, ttl: 60000 })
  await c.create(`${base}/ts-`, null, { mode: CreateMode.PERSISTENT_SEQUENTIAL_WITH_TTL, ttl: 60000 })
  await rejectsWith(c.create(`${base}/t0`, null, { mode: CreateMode.PERSISTENT_WITH_TTL, ttl: 0 }), Code.BAD_ARGUMENTS)
  const { children, stat } = await c.getChildren(base, { stat: true })
  assert.equal(children.length, 6)
  assert.equal(stat.numChildren, 6)
  await c.close()
  const d = await open()
  assert.equal(await d.exists(`${base}/e`), null)
  assert.equal((await d.getChildren(base)).length, 4)
  await d.close()
})

test('multi is all or nothing; sync', async () => {
  const c = await open()
  const base = `${ROOT}/multi`
  await c.create(base)
  const res = await c.multi([
    { op: 'create', path: `${base}/m`, data: 'x' },
    { op: 'set', path: `${base}/m`, data: 'y', version: 0 },
    { op: 'check', path: `${base}/m`, version: 1 }
  ])
  assert.equal(res[0].path, `${base}/m`)
  assert.equal(res[1].stat.version, 1)
  const err = await c.multi([
    { op: 'create', path: `${base}/n` },
    { op: 'set', path: `${base}/m`, data: 'z', version: 7 },
    { op: 'delete', path: `${base}/m` }
  ]).catch(e => e)
  assert.equal(err.code, Code.BAD_VERSION)
  assert.deepEqual(err.results.map(r => r.err), [0, Code.BAD_VERSION, Code.RUNTIME_INCONSISTENCY])
  assert.equal(await c.exists(`${base}/n`), null)
  assert.equal(await c.sync(base), base)
  await c.close()
})

test('watches: callbacks, events and async iterators; one-shot and persistent', async () => {
  const c = await open()
  const other = await open()
  const base = `${ROOT}/watch`
  await c.create(base)
  await c.create(`${base}/d`, 'a')
  const seen = []
  await c.get(`${base}/d`, { watch: (ev) => seen.push(ev) })
  const ex = await c.exists(`${base}/later`, { watch: true })
  assert.equal(ex.stat, null)
  const kids = await c.getChildren(base, { watch: true })
  await other.set(`${base}/d`, 'b')
  await other.set(`${base}/d`, 'c')
  await other.create(`${base}/later`)
  // Events come before the replies that reflect them: after a sync and a read, all are in.
  await c.sync(base)
  const created = await ex.watcher.next(10000)
  assert.deepEqual([created.value.type, created.value.path], ['created', `${base}/later`])
  const changed = []
  for await (const ev of kids.watcher) changed.push(ev) // a one-shot watcher's iteration ends after it fires
  assert.deepEqual(changed.map(e => [e.type, e.path]), [['childrenChanged', base]])
  await c.exists(`${base}/d`)
  assert.deepEqual(seen.map(e => e.type), ['dataChanged'], 'one-shot watch fired once')

  const rec = await c.addWatch(base, 'persistentRecursive')
  await other.create(`${base}/later/x`)
  await other.set(`${base}/later/x`, '1')
  await other.delete(`${base}/later/x`)
  const got = []
  for await (const ev of rec) { got.push(ev.type); if (got.length === 3) break }
  assert.deepEqual(got, ['created', 'dataChanged', 'deleted'])
  const rec2 = await c.addWatch(base, 'persistentRecursive')
  await c.removeWatches(base, 'persistentRecursive')
  await rejectsWith(c.removeWatches(base, 'persistentRecursive'), Code.NO_WATCHER)
  await other.set(`${base}/d`, 'e')
  await c.sync(base)
  await c.exists(`${base}/d`)
  assert.equal(rec2.pending, 0, 'a removed watch fired')
  await other.close()
  await c.close()
})

test('pipelined requests complete in order', async () => {
  const c = await open()
  const base = `${ROOT}/async`
  await c.create(base)
  const order = []
  const all = []
  for (let i = 0; i < 200; i++) all.push(c.create(`${base}/n${String(i).padStart(3, '0')}`, 'v').then(() => order.push(i)))
  await Promise.all(all)
  assert.deepEqual(order, [...Array(200).keys()])
  assert.equal((await c.getChildren(base)).length, 200)
  await c.close()
})

test('an async bulk load three times the server\'s per-client queue is all answered, in order', async () => {
  // The client keeps at most 1,000 requests in flight; the server takes 10,000 from one client.
  const c = await open()
  const base = `${ROOT}/bulk`
  await c.create(base)
  const n = 30000
  const order = []
  const all = []
  for (let i = 0; i < n; i++) all.push(c.set(base, 'v').then(() => order.push(i)))
  await Promise.all(all)
  assert.equal(order.length, n)
  assert.ok(order.every((v, i) => v === i), 'completions out of order')
  assert.equal((await c.exists(base)).version, n)
  await c.close()
})

test('session events, resume with id and password, close, wrong password', async () => {
  const states = []
  const c = new Client(connectString(), { timeoutMs: TIMEOUT_MS })
  c.on('state', s => states.push(s))
  await c.connect()
  assert.deepEqual(states, ['connecting', 'connected'])
  const base = `${ROOT}/resume`
  await c.create(base)
  await c.create(`${base}/eph`, null, { mode: CreateMode.EPHEMERAL })
  const { sessionId, passwd } = c
  await c.detach()
  const r = await open({ sessionId, passwd })
  assert.equal(r.sessionId, sessionId)
  assert.equal((await r.exists(`${base}/eph`)).ephemeralOwner, sessionId)
  await r.close()
  await rejectsWith(open({ sessionId, passwd }), Code.SESSION_EXPIRED)
  const live = await open()
  await rejectsWith(open({ sessionId: live.sessionId, passwd: Buffer.alloc(16, 1) }), Code.SESSION_EXPIRED)
  assert.ok(await live.exists('/'))
  await live.close()
})

test('pings keep an idle session alive past its timeout', async () => {
  const c = await open({ timeoutMs: 4000 })
  await c.create(`${ROOT}/ping`, null, { mode: CreateMode.EPHEMERAL })
  // Idleness is the thing under test: do nothing for twice the session timeout.
  await new Promise(resolve => setTimeout(resolve, c.negotiatedMs * 2))
  const other = await open()
  assert.ok(await other.exists(`${ROOT}/ping`))
  assert.ok(await c.exists(`${ROOT}/ping`))
  await other.close()
  await c.close()
})

test('a client stopped past its session timeout finds its session expired', async () => {
  const { fork } = require('node:child_process')
  const path = require('node:path')
  const c = await open()
  const eph = `${ROOT}/expiry`
  const child = fork(path.join(__dirname, '..', 'scripts', 'expiring_client.js'), [connectString(), eph], { stdio: 'inherit' })
  const messages = []
  const next = () => new Promise((resolve, reject) => {
    if (messages.length) return resolve(messages.shift())
    const t = setTimeout(() => reject(new Error('no message from the child')), 40000)
    child.once('message', () => { clearTimeout(t); resolve(messages.shift()) })
  })
  child.on('message', m => messages.push(m))
  try {
    assert.equal(await next(), 'ready')
    await c.sync(eph) // the child's create was acked, perhaps by another server
    const { stat, watcher } = await c.exists(eph, { watch: true })
    assert.ok(stat)
    child.kill('SIGSTOP')
    const ev = await watcher.next(30000) // the ensemble expires the silent session
    assert.equal(ev.value.type, 'deleted')
    child.kill('SIGCONT')
    assert.equal(await next(), `expired ${Code.SESSION_EXPIRED}`)
  } finally {
    child.kill('SIGCONT')
    child.kill('SIGKILL')
    await c.close()
  }
})

test('without any server, a request fails with ConnectionLoss after the session timeout', async () => {
  const endpoints = connectString().split(',')
  const ep = endpoints[endpoints.length - 1]
  const c = new Client(ep, { timeoutMs: 4000 })
  await c.connect()
  const lost = new Promise(resolve => c.once('connecting', resolve))
  nodeCommand('down', ep)
  try {
    await lost
    const t0 = Date.now()
    await rejectsWith(c.exists('/'), Code.CONNECTION_LOSS)
    const waited = Date.now() - t0
    assert.ok(waited >= c.negotiatedMs / 2 && waited <= 3 * c.negotiatedMs, `failed after ${waited} ms`)
  } finally {
    nodeCommand('up', ep)
    await c.close()
  }
})

test('lock: contenders never hold it at once; a timeout gives up', async () => {
  const path = `${ROOT}/lock`
  let holders = 0; let most = 0; let rounds = 0
  const contender = async (id) => {
    const c = await open()
    const lock = new Lock(c, path, id)
    for (let i = 0; i < 5; i++) {
      assert.ok(await lock.acquire({ timeoutMs: 30000 }))
      most = Math.max(most, ++holders)
      await c.exists('/') // hold it across a round trip
      holders--
      await lock.release()
      rounds++
    }
    await c.close()
  }
  await Promise.all(['a', 'b', 'c'].map(contender))
  assert.equal(rounds, 15)
  assert.equal(most, 1)
  const c = await open()
  assert.deepEqual(await c.getChildren(path), [])
  const a = new Lock(c, path, 'a'); const b = new Lock(c, path, 'b')
  assert.ok(await a.acquire({ timeoutMs: 10000 }))
  assert.deepEqual(await a.contenders(), ['a'])
  assert.equal(await b.acquire({ timeoutMs: 300 }), false)
  await a.release()
  assert.ok(await b.acquire({ timeoutMs: 10000 }))
  await b.release()
  await c.close()
})

test('election runs the leader function with the identifier as node data', async () => {
  const c = await open()
  const e = new Election(c, `${ROOT}/election`, 'node-1')
  const seen = await e.run(async () => e.contenders())
  assert.deepEqual(seen, ['node-1'])
  await c.close()
})

test('failover: kill -9 the connected server mid-run; session, ephemeral and watches carry on', async () => {
  const c = new Client(connectString(), { timeoutMs: TIMEOUT_MS })
  const states = []
  c.on('state', s => states.push(s))
  await c.connect()
  const base = `${ROOT}/failover`
  await c.create(base)
  await c.create(`${base}/eph`, null, { mode: CreateMode.EPHEMERAL })
  await c.create(`${base}/w`)
  const watcher = new Watcher()
  await c.exists(`${base}/w`, { watch: watcher })
  const sid = c.sessionId
  const ep = c.endpoint
  const inflight = []
  for (let i = 0; i < 50; i++) inflight.push(c.create(`${base}/p-`, null, { mode: CreateMode.PERSISTENT_SEQUENTIAL }).then(() => 'ok', e => e.code))
  killEndpoint(ep)
  const outcomes = await Promise.all(inflight)
  assert.ok(outcomes.every(o => o === 'ok' || o === Code.CONNECTION_LOSS), String(outcomes))
  let made
  for (let i = 0; i < 20 && !made; i++) made = await c.create(`${base}/after`).catch(e => { if (e.code !== Code.CONNECTION_LOSS) throw e })
  assert.equal(made, `${base}/after`)
  assert.equal(c.sessionId, sid)
  assert.ok(states.filter(s => s === 'connected').length >= 2, String(states))
  assert.ok(await c.exists(`${base}/eph`))
  const other = await open()
  await other.set(`${base}/w`, 'x')
  await other.close()
  const ev = await watcher.next(15000)
  assert.equal(ev.value.type, 'dataChanged')
  await c.close()
})
