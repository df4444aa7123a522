'use strict'
// tests/conformance/scenarios.json (see its README) run by the Node binding against the live
// ensemble, one test per scenario.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { Client, Code, Watcher } = require('../src')
const { connectString, killEndpoint } = require('../scripts/env')

const FILE = path.resolve(__dirname, '..', '..', '..', 'tests', 'conformance', 'scenarios.json')
const DOC = JSON.parse(fs.readFileSync(FILE, 'utf8'))
const ERRORS = DOC.errors
const EVENT_NAMES = { created: 'NodeCreated', deleted: 'NodeDeleted', dataChanged: 'NodeDataChanged', childrenChanged: 'NodeChildrenChanged' }
const MODES = ['persistent', 'ephemeral', 'persistent_sequential', 'ephemeral_sequential', 'container', 'persistent_ttl', 'persistent_sequential_ttl']
const SESSION_MS = 6000
const EVENT_WAIT_MS = 15000

class Run {
  constructor (scenario, root) {
    this.scenario = scenario
    this.root = root
    this.clients = {}
    this.sessions = {}
    this.watches = {} // name -> { client, events: [[type, path]], consumed, watcher }
  }

  async open (name, resume) {
    const c = new Client(connectString(), { timeoutMs: SESSION_MS, ...(resume || {}) })
    await c.connect()
    this.clients[name] = c
    this.sessions[name] = { sessionId: c.sessionId, passwd: c.passwd }
    return c
  }

  full (p) { return this.root + p }
  rel (p) { assert.ok(p.startsWith(this.root), p); return p.slice(this.root.length) }

  watcher (client, name) {
    if (!this.watches[name]) {
      const rec = { client, events: [], consumed: 0, watcher: new Watcher() }
      rec.watcher.on('event', e => rec.events.push([EVENT_NAMES[e.type], this.rel(e.path)]))
      this.watches[name] = rec
    }
    return this.watches[name].watcher
  }

  checkStat (got, want, where) {
    if (want === null) return assert.equal(got, null, `${where}: expected no node`)
    assert.ok(got, `${where}: expected a stat`)
    for (const [k, v] of Object.entries(want)) {
      const w = typeof v === 'string' && v.startsWith('session:') ? this.sessions[v.slice(8)].sessionId : v
      assert.equal(BigInt(got[k]), BigInt(w), `${where}: stat.${k}`)
    }
  }

  // Starts one op; resolves with its raw result.
  start (c, step) {
    const p = this.full(step.path ?? '')
    const data = step.data ?? ''
    const watch = step.watch ? this.watcher(step.client || 'a', step.watch) : undefined
    switch (step.op) {
      case 'create': return c.create2(p, data, { mode: MODES.indexOf(step.mode || 'persistent'), ttl: step.ttl })
      case 'get': return c.get(p, { watch })
      case 'set': return c.set(p, data, step.version ?? -1)
      case 'delete': return c.delete(p, step.version ?? -1)
      case 'exists': return c.exists(p, { watch })
      case 'get_children': return c.getChildren(p, { watch })
      case 'sync': return c.sync(p)
      case 'multi': return c.multi(step.ops.map(o => ({ op: o.op, path: this.full(o.path), data: o.data ?? '', version: o.version ?? -1 })))
      case 'remove_watches': return c.removeWatches(p, { children: 'children', data: 'data', any: 'any', persistent: 'persistent', persistent_recursive: 'persistentRecursive' }[step.type])
      default: throw new Error(`unknown op ${step.op}`)
    }
  }

  check (step, outcome, where) {
    const { ok, value, error } = outcome
    if (step.error) {
      assert.ok(!ok, `${where}: succeeded, want ${step.error}`)
      assert.equal(error.code, ERRORS[step.error], `${where}: ${error.message}, want ${step.error}`)
      if (step.op_errors) assert.deepEqual(error.results.map(r => r.err), step.op_errors.map(n => ERRORS[n]), where)
      return
    }
    if (!ok) throw new Error(`${where}: failed: ${error && error.message}`)
    const want = step.expect
    if (!want) return
    if (step.op === 'create') {
      if ('path' in want) assert.equal(this.rel(value.path), want.path, where)
      if ('path_pattern' in want) assert.match(this.rel(value.path), new RegExp(want.path_pattern), where)
      if ('stat' in want) this.checkStat(value.stat, want.stat, where)
    } else if (step.op === 'get') {
      if ('data' in want) assert.equal(value.data.toString('utf8'), want.data, where)
      if ('stat' in want) this.checkStat(value.stat, want.stat, where)
    } else if (step.op === 'set' || step.op === 'exists') {
      this.checkStat(value, want.stat, where)
    } else if (step.op === 'get_children') {
      assert.deepEqual([...value].sort(), [...want.children].sort(), where)
    } else if (step.op === 'multi') {
      assert.equal(value.length, want.results.length, where)
      want.results.forEach((w, i) => {
        if ('path' in w) assert.equal(this.rel(value[i].path), w.path, `${where}: op ${i}`)
        if ('stat' in w) this.checkStat(value[i].stat, w.stat, `${where}: op ${i}`)
      })
    }
  }

  async outcome (promiseFn) {
    const deadline = Date.now() + 30000
    for (;;) {
      try {
        return { ok: true, value: await promiseFn() }
      } catch (error) {
        if (this.scenario.retry_connection_loss && error.code === Code.CONNECTION_LOSS && Date.now() < deadline) continue
        if (error.code === undefined) throw error
        return { ok: false, error }
      }
    }
  }

  async events (step, where) {
    const rec = this.watches[step.watch]
    assert.ok(rec, `${where}: no watcher named ${step.watch}`)
    if (step.op === 'no_more_events') {
      const c = this.clients[rec.client]
      await c.sync(this.root)
      await c.exists(this.root)
      assert.deepEqual(rec.events.slice(rec.consumed), [], `${where}: unexpected events on ${step.watch}`)
      return
    }
    const want = step.events.map(e => [e.type, e.path])
    const total = rec.consumed + want.length
    const deadline = Date.now() + EVENT_WAIT_MS
    while (rec.events.length < total) {
      const left = deadline - Date.now()
      assert.ok(left > 0, `${where}: ${rec.events.length - rec.consumed} events on ${step.watch}, want ${want.length}`)
      await new Promise(resolve => {
        const t = setTimeout(done, left)
        function done () { clearTimeout(t); rec.watcher.off('event', done); resolve() }
        rec.watcher.on('event', done)
      })
    }
    assert.deepEqual(rec.events.slice(rec.consumed, total), want, where)
    rec.consumed = total
  }

  async step (step, where) {
    const name = step.client || 'a'
    if (step.op === 'events' || step.op === 'no_more_events') return this.events(step, where)
    if (step.op === 'resume_closed') {
      const out = await this.outcome(() => this.open(`${name}-resumed`, this.sessions[name]))
      return this.check({ op: 'resume', error: step.error }, out, where)
    }
    const c = this.clients[name]
    assert.ok(c, `${where}: client ${name} is closed`)
    switch (step.op) {
      case 'close': delete this.clients[name]; return c.close()
      case 'reopen': {
        const { sessionId } = this.sessions[name]
        await c.detach()
        const r = await this.open(name, this.sessions[name])
        return assert.equal(r.sessionId, sessionId, where)
      }
      case 'kill_server': return killEndpoint(c.endpoint)
      case 'add_watch': return c.addWatch(this.full(step.path), step.mode === 'persistent' ? 'persistent' : 'persistentRecursive', this.watcher(name, step.watch))
      case 'pipeline': {
        const order = []
        const started = step.ops.map((s, i) => this.start(c, { ...s, client: name }).then(
          value => { order.push(i); return { ok: true, value } },
          error => { order.push(i); return { ok: false, error } }))
        const outcomes = await Promise.all(started)
        outcomes.forEach((o, i) => this.check(step.ops[i], o, `${where}, pipelined op ${i}`))
        return assert.deepEqual(order, [...order].sort((a, b) => a - b), `${where}: completions out of order`)
      }
      default:
        return this.check(step, await this.outcome(() => this.start(c, step)), where)
    }
  }
}

DOC.scenarios.forEach((scenario, index) => {
  test(`conformance: ${scenario.name}`, async () => {
    const run = new Run(scenario, `/conformance-node-${process.pid}-${index}-${Date.now()}`)
    try {
      for (const name of scenario.clients) await run.open(name)
      await run.clients[scenario.clients[0]].create(run.root)
      for (const [i, step] of scenario.steps.entries()) await run.step(step, `step ${i} (${step.op})`)
    } finally {
      for (const c of Object.values(run.clients)) await c.close()
    }
  })
})
