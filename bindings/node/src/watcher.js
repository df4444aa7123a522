'use strict'
// A Watcher hears watch events three ways: its callback, 'event' events, and as an async
// iterator. A one-shot watcher's iteration ends after it fires; a persistent one's when it is
// removed or the client closes.

const { EventEmitter } = require('node:events')

class Watcher extends EventEmitter {
  constructor (fn = null) {
    super()
    this._fn = fn
    this._queue = []
    this._waiting = []
    this._ended = false
  }

  _fire (event, last) {
    if (this._fn) {
      try { this._fn(event) } catch (e) { process.nextTick(() => { throw e }) }
    }
    this.emit('event', event)
    const waiter = this._waiting.shift()
    if (waiter) waiter({ value: event, done: false })
    else this._queue.push(event)
    if (last) this._end()
  }

  _reopen () { this._ended = false }

  _end () {
    this._ended = true
    for (const w of this._waiting.splice(0)) w({ value: undefined, done: true })
    this.emit('end')
  }

  /** The next event (a Promise); rejects after timeoutMs if given. */
  next (timeoutMs) {
    if (this._queue.length) return Promise.resolve({ value: this._queue.shift(), done: false })
    if (this._ended) return Promise.resolve({ value: undefined, done: true })
    return new Promise((resolve, reject) => {
      let timer
      const waiter = (r) => { if (timer) clearTimeout(timer); resolve(r) }
      this._waiting.push(waiter)
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          const i = this._waiting.indexOf(waiter)
          if (i >= 0) this._waiting.splice(i, 1)
          reject(new Error(`no watch event within ${timeoutMs} ms`))
        }, timeoutMs)
      }
    })
  }

  /** Events received and not yet consumed by the iterator. */
  get pending () { return this._queue.length }

  [Symbol.asyncIterator] () {
    return { next: () => this.next(), return: async () => { this._end(); return { value: undefined, done: true } } }
  }
}

module.exports = { Watcher }
