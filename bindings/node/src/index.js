'use strict'
// zkpy's Node.js client over ZeroMQ. See ../README.md.
const { Client, CreateMode, EventType, WatcherType } = require('./client')
const { Code, ZkError } = require('./errors')
const { Watcher } = require('./watcher')
const { Lock, Election } = require('./recipes')
const jute = require('./jute')

/** Connects and resolves with a Client once it has a session. */
async function connect (connectString, opts = {}) {
  const c = new Client(connectString, opts)
  await c.connect()
  return c
}

module.exports = { connect, Client, CreateMode, EventType, WatcherType, Code, ZkError, Watcher, Lock, Election, jute }
