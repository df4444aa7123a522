'use strict'
// Runs a command (node --test ...) against a live ensemble: starts one with the launcher in a
// temporary folder unless ZKPY_CONNECT names one, and stops it by pid afterwards whatever happened.

const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { testenv } = require('./env')

const cmd = process.argv.slice(2)
if (!cmd.length) { console.error('usage: with-ensemble.js COMMAND...'); process.exit(2) }

let dir = null
const env = { ...process.env }
if (!env.ZKPY_CONNECT) {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zkpy-node-'))
  const out = testenv('start', dir)
  const line = out.split('\n').find(l => l.startsWith('connect: '))
  if (!line) { console.error(`no connect string from the launcher:\n${out}`); testenv('stop', dir); process.exit(1) }
  env.ZKPY_CONNECT = line.slice('connect: '.length).trim()
  env.ZKPY_DATA_DIR = dir
}
// Stops the ensemble; its folder goes too unless the tests failed (it holds the nodes' logs).
const stop = (passed) => { if (dir) { const d = dir; dir = null; process.stdout.write(testenv('stop', d, ...(passed ? ['--remove'] : []))) } }
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { stop(false); process.exit(1) })
let status = 1
try {
  const r = spawnSync(cmd[0], cmd.slice(1), { stdio: 'inherit', env, timeout: 600000 })
  status = r.status === null ? 1 : r.status
  if (r.error) console.error(r.error)
} finally {
  stop(status === 0)
}
process.exit(status)
