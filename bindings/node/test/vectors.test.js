'use strict'
// The codec against docs/protocol-vectors.json: client->server vectors are encoded from their
// field values and must equal the hex; server->client vectors are decoded (whole and cut short
// at every byte, which must be refused) and must give the field values.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { Writer, Reader, enc, dec, MarshallingError } = require('../src/jute')

const FILE = path.resolve(__dirname, '..', '..', '..', 'docs', 'protocol-vectors.json')
// Longs past 2^53 would lose digits as JSON numbers: read every long-looking number as a string (BigInt takes both).
const { vectors } = JSON.parse(fs.readFileSync(FILE, 'utf8').replace(/([:[,]\s*)(-?\d{16,})/g, '$1"$2"'))
const hex = (v) => Buffer.from(v.hex, 'hex')
const acl = (list) => list.map(a => ({ perms: a.perms, scheme: a.id.scheme, id: a.id.id }))

function encodePart (w, part, v) {
  if (part === 'multi request') {
    return enc.multi(w, v.map(([type, r]) => ({ type, path: r.path, data: r.data && hex(r.data), flags: r.flags, version: r.version, acl: r.acl && acl(r.acl) })))
  }
  switch (v.record) {
    case 'ConnectRequest': return enc.connect(w, { lastZxid: BigInt(v.last_zxid_seen), timeoutMs: v.timeout_ms, sessionId: BigInt(v.session_id), passwd: hex(v.passwd) })
    case 'RequestHeader': return enc.header(w, v.xid, v.type)
    case 'AuthPacket': return enc.auth(w, v.scheme, hex(v.auth))
    case 'CreateRequest': return enc.create(w, v.path, hex(v.data), v.flags, acl(v.acl))
    case 'CreateTTLRequest': return enc.create(w, v.path, hex(v.data), v.flags, acl(v.acl), BigInt(v.ttl))
    case 'PathWatchRequest': return enc.pathWatch(w, v.path, v.watch)
    case 'SetDataRequest': return enc.setData(w, v.path, hex(v.data), v.version)
    case 'DeleteRequest': case 'CheckVersionRequest': return enc.delete(w, v.path, v.version)
    case 'PathRequest': return enc.path(w, v.path)
    case 'SetACLRequest': return enc.setACL(w, v.path, acl(v.acl), v.version)
    case 'AddWatchRequest': return enc.pathInt(w, v.path, v.mode)
    case 'WatchTypeRequest': return enc.pathInt(w, v.path, v.type)
    case 'SetWatches2': return enc.setWatches2(w, BigInt(v.relative_zxid), { data: v.data_watches, exist: v.exist_watches, child: v.child_watches, persistent: v.persistent_watches, persistentRecursive: v.persistent_recursive_watches })
    default: throw new Error(`no encoder for ${v.record}`)
  }
}

const statOf = (s) => ({ czxid: BigInt(s.czxid), mzxid: BigInt(s.mzxid), ctime: BigInt(s.ctime), mtime: BigInt(s.mtime), version: s.version, cversion: s.cversion, aversion: s.aversion, ephemeralOwner: BigInt(s.ephemeral_owner), dataLength: s.data_length, numChildren: s.num_children, pzxid: BigInt(s.pzxid) })

// Decodes one part and returns [got, want] in the same shape.
function decodePart (r, part, v) {
  if (part === 'multi response') {
    const got = dec.multi(r).map(x => ({ err: x.err, path: x.path, stat: x.stat }))
    const want = v.map(x => ({ err: x.err, path: x.body ? x.body.path : undefined, stat: x.body && x.body.stat ? statOf(x.body.stat) : undefined }))
    return [got, want]
  }
  switch (v.record) {
    case 'ConnectResponse': return [dec.connectResponse(r), { protocolVersion: v.protocol_version, timeoutMs: v.timeout_ms, sessionId: BigInt(v.session_id), passwd: hex(v.passwd), readOnly: v.read_only }]
    case 'ReplyHeader': return [dec.replyHeader(r), { xid: v.xid, zxid: BigInt(v.zxid), err: v.err }]
    case 'CreateResponse': case 'PathRequest': return [r.string(), v.path]
    case 'Create2Response': return [{ path: r.string(), stat: r.stat() }, { path: v.path, stat: statOf(v.stat) }]
    case 'StatResponse': return [r.stat(), statOf(v.stat)]
    case 'GetDataResponse': return [{ data: r.buffer(), stat: r.stat() }, { data: hex(v.data), stat: statOf(v.stat) }]
    case 'GetChildrenResponse': return [r.strings(), v.children]
    case 'GetChildren2Response': return [{ children: r.strings(), stat: r.stat() }, { children: v.children, stat: statOf(v.stat) }]
    case 'PathsResponse': return [r.strings(), v.paths]
    case 'IntResponse': return [r.int(), v.value]
    case 'GetACLResponse': {
      const n = r.int()
      const got = []
      for (let i = 0; i < n; i++) got.push({ perms: r.int(), scheme: r.string(), id: r.string() })
      return [{ acl: got, stat: r.stat() }, { acl: acl(v.acl), stat: statOf(v.stat) }]
    }
    case 'WatcherEvent': return [dec.watcherEvent(r), { type: v.type, state: v.state, path: v.path }]
    default: throw new Error(`no decoder for ${v.record}`)
  }
}

test('the vectors file holds 45 vectors', () => assert.equal(vectors.length, 45))

for (const v of vectors) {
  test(`vector: ${v.name}`, () => {
    const want = Buffer.from(v.hex, 'hex')
    if (v.direction === 'client->server') {
      const w = new Writer()
      for (const p of v.parts) encodePart(w, p.part, p.value)
      assert.equal(w.toBuffer().toString('hex'), v.hex)
      return
    }
    const r = new Reader(want)
    for (const p of v.parts) {
      const [got, exp] = decodePart(r, p.part, p.value)
      assert.deepEqual(got, exp)
    }
    assert.ok(r.done(), 'bytes left over')
    const optionalTail = v.parts[0].part === 'ConnectResponse'
    for (let cut = 0; cut < want.length; cut++) {
      if (optionalTail && cut === want.length - 1) continue // readOnly may be left out
      const rc = new Reader(want.subarray(0, cut))
      assert.throws(() => { for (const p of v.parts) decodePart(rc, p.part, p.value) }, MarshallingError, `cut at ${cut}`)
    }
  })
}

test('decoders fed random and mangled frames throw only MarshallingError', () => {
  let seed = 12345
  const rand = (n) => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n }
  const frames = vectors.filter(v => v.direction === 'server->client').map(v => Buffer.from(v.hex, 'hex'))
  const decoders = [
    r => dec.connectResponse(r),
    r => { dec.replyHeader(r); dec.watcherEvent(r) },
    r => { dec.replyHeader(r); dec.multi(r) },
    r => { dec.replyHeader(r); r.stat() },
    r => { dec.replyHeader(r); r.strings(); r.stat() },
    r => { dec.replyHeader(r); r.buffer(); r.stat() }
  ]
  for (let i = 0; i < 3000; i++) {
    let frame
    if (i % 2) {
      frame = Buffer.from(frames[rand(frames.length)])
      for (let k = 0; k < 1 + rand(4); k++) frame[rand(frame.length)] = rand(256)
    } else {
      frame = Buffer.alloc(rand(96))
      for (let k = 0; k < frame.length; k++) frame[k] = rand(4) ? rand(256) : 0
    }
    for (const decode of decoders) {
      try { decode(new Reader(frame)) } catch (e) { assert.ok(e instanceof MarshallingError, `${e} on ${frame.toString('hex')}`) }
    }
  }
})
