'use strict'
// One lock shared across languages: a Python process (kazoo's node layout written with zkclient)
// and this Node process contend for the same lock and must never hold it at once.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawn } = require('node:child_process')
const { connect, Lock } = require('../src')
const { connectString, python, ROOT } = require('../scripts/env')

function appendLine (file, line) { fs.appendFileSync(file, line + '\n') }

// Resolves once the lock has a second contender (the Python process queued behind us).
async function untilContended (zk, lockPath) {
  const deadline = Date.now() + 60000
  for (;;) {
    const { children, watcher } = await zk.getChildren(lockPath, { watch: true })
    if (children.length >= 2) return
    assert.ok(Date.now() < deadline, 'the Python contender never queued for the lock')
    await watcher.next(deadline - Date.now()).catch(() => {})
  }
}

test('a Python and a Node process share one lock and never hold it at once', async (t) => {
  const lockPath = `/interop-${process.pid}/lock`
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zkpy-interop-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  const log = path.join(dir, 'holds.log')
  const ROUNDS = 10
  const py = spawn(python(), [path.join(ROOT, 'bindings', 'python_lock.py'), connectString(), lockPath, log, 'python', String(ROUNDS)],
    { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] })
  const pyDone = new Promise((resolve, reject) => { py.on('exit', resolve); py.on('error', reject) })
  const watchdog = setTimeout(() => py.kill('SIGKILL'), 120000)
  const zk = await connect(connectString(), { timeoutMs: 6000 })
  try {
    const lock = new Lock(zk, lockPath, 'node')
    for (let i = 0; i < ROUNDS; i++) {
      assert.ok(await lock.acquire({ timeoutMs: 60000 }))
      if (i === 0) await untilContended(zk, lockPath) // make the Python side wait on us at least once
      appendLine(log, 'enter node')
      await zk.exists('/') // hold it across a round trip
      appendLine(log, 'exit node')
      await lock.release()
    }
    assert.equal(await pyDone, 0, 'the Python contender failed')
  } finally {
    clearTimeout(watchdog)
    await zk.close()
  }
  const lines = fs.readFileSync(log, 'utf8').trim().split('\n')
  assert.equal(lines.length, 4 * ROUNDS)
  for (let i = 0; i < lines.length; i += 2) {
    const who = lines[i].split(' ')[1]
    assert.deepEqual([lines[i], lines[i + 1]], [`enter ${who}`, `exit ${who}`], `holds overlap at line ${i}`)
  }
  assert.equal(lines.filter(l => l === 'enter python').length, ROUNDS)
  assert.equal(lines.filter(l => l === 'enter node').length, ROUNDS)
  assert.equal(lines[2], 'enter python', 'the Python contender, queued during our first hold, goes next')
})
