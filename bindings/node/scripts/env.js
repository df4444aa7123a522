'use strict'
// The live ensemble the tests run against: named by ZKPY_CONNECT (and ZKPY_DATA_DIR, which
// lets a test kill a node) as scripts/with-ensemble.js sets them; bindings/testenv.py does the work.

const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const ROOT = path.resolve(__dirname, '..', '..', '..')

function python () {
  if (process.env.ZKPY_PYTHON) return process.env.ZKPY_PYTHON
  const venv = path.join(ROOT, '.venv', 'bin', 'python')
  return fs.existsSync(venv) ? venv : 'python3'
}

function testenv (...args) {
  return execFileSync(python(), [path.join(ROOT, 'bindings', 'testenv.py'), ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
}

function connectString () {
  const cs = process.env.ZKPY_CONNECT
  if (!cs) throw new Error('ZKPY_CONNECT is not set: run the tests with `npm test` (scripts/with-ensemble.js starts an ensemble)')
  return cs
}

function killEndpoint (endpoint) {
  const dir = process.env.ZKPY_DATA_DIR
  if (!dir) throw new Error('ZKPY_DATA_DIR is not set: the failover test needs the ensemble\'s data dir')
  return testenv('kill', dir, endpoint)
}

// 'down' (stopped, not restarted by the launcher) or 'up' the node serving an endpoint.
function nodeCommand (command, endpoint) {
  const dir = process.env.ZKPY_DATA_DIR
  if (!dir) throw new Error('ZKPY_DATA_DIR is not set: this test needs the ensemble\'s data dir')
  return testenv(command, dir, endpoint)
}

module.exports = { ROOT, python, testenv, connectString, killEndpoint, nodeCommand }
