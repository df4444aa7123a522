'use strict'
// A child process for the session-expiry test: opens a session, creates an ephemeral, says
// 'ready' and, after being stopped past its timeout and continued, reports what it saw.
const { connect, CreateMode } = require('../src')

async function main () {
  const [connectString, ephemeral] = process.argv.slice(2)
  const zk = await connect(connectString, { timeoutMs: 4000 })
  const expired = new Promise(resolve => zk.on('expired', resolve))
  await zk.create(ephemeral, null, { mode: CreateMode.EPHEMERAL })
  process.send('ready')
  const timer = setTimeout(() => { process.send('no expired event'); process.exit(1) }, 30000)
  await expired
  clearTimeout(timer)
  const err = await zk.exists('/').then(() => null, e => e)
  process.send(err ? `expired ${err.code}` : 'a request succeeded after expiry')
  await zk.close()
  process.exit(0)
}
main().catch(e => { process.send(`error ${e.message}`); process.exit(1) })
