// Types for zkpy-client, the Node.js client of zkpy over ZeroMQ.
import { EventEmitter } from 'node:events'

export interface Stat {
  czxid: bigint; mzxid: bigint; ctime: bigint; mtime: bigint
  version: number; cversion: number; aversion: number
  ephemeralOwner: bigint; dataLength: number; numChildren: number; pzxid: bigint
}

export type EventTypeName = 'created' | 'deleted' | 'dataChanged' | 'childrenChanged'
export interface WatchEvent { type: EventTypeName; path: string; zxid: bigint }
export type SessionState = 'disconnected' | 'connecting' | 'connected' | 'expired' | 'closed'

/** Hears watch events as a callback, as 'event' events, and as an async iterator. */
export class Watcher extends EventEmitter implements AsyncIterable<WatchEvent> {
  constructor (fn?: ((event: WatchEvent) => void) | null)
  next (timeoutMs?: number): Promise<IteratorResult<WatchEvent, undefined>>
  readonly pending: number
  on (event: 'event', listener: (e: WatchEvent) => void): this
  on (event: 'end', listener: () => void): this
  [Symbol.asyncIterator] (): AsyncIterator<WatchEvent>
}

export const CreateMode: {
  readonly PERSISTENT: 0; readonly EPHEMERAL: 1; readonly PERSISTENT_SEQUENTIAL: 2
  readonly EPHEMERAL_SEQUENTIAL: 3; readonly CONTAINER: 4; readonly PERSISTENT_WITH_TTL: 5
  readonly PERSISTENT_SEQUENTIAL_WITH_TTL: 6
}
export type CreateModeValue = 0 | 1 | 2 | 3 | 4 | 5 | 6

export const Code: {
  readonly OK: 0; readonly SYSTEM_ERROR: -1; readonly RUNTIME_INCONSISTENCY: -2; readonly CONNECTION_LOSS: -4
  readonly MARSHALLING_ERROR: -5; readonly UNIMPLEMENTED: -6; readonly OPERATION_TIMEOUT: -7; readonly BAD_ARGUMENTS: -8
  readonly API_ERROR: -100; readonly NO_NODE: -101; readonly NO_AUTH: -102; readonly BAD_VERSION: -103
  readonly NO_CHILDREN_FOR_EPHEMERALS: -108; readonly NODE_EXISTS: -110; readonly NOT_EMPTY: -111
  readonly SESSION_EXPIRED: -112; readonly INVALID_ACL: -114; readonly AUTH_FAILED: -115; readonly CLOSING: -116
  readonly SESSION_MOVED: -118; readonly NO_WATCHER: -121; readonly THROTTLED: -127
}

export interface MultiOpResult { err: number; type?: number; path?: string; stat?: Stat }

export class ZkError extends Error {
  /** ZooKeeper's error code, e.g. -101 (Code.NO_NODE). */
  code: number
  /** The code's name in Code, e.g. 'NO_NODE'. */
  codeName: string
  path?: string
  /** multi: every op's result, the failing one with its error. */
  results?: MultiOpResult[]
}

export type Data = Buffer | string | null | undefined
export type WatchOption = boolean | ((event: WatchEvent) => void) | Watcher

export interface ClientOptions {
  /** Requested session timeout (ms); the server clamps it. Default 10000. */
  timeoutMs?: number
  /** Resume this session (with its password) instead of starting one. */
  sessionId?: bigint
  passwd?: Buffer
}

export type MultiOp =
  | { op: 'create'; path: string; data?: Data; mode?: CreateModeValue }
  | { op: 'set'; path: string; data?: Data; version?: number }
  | { op: 'delete'; path: string; version?: number }
  | { op: 'check'; path: string; version: number }

export class Client extends EventEmitter {
  constructor (connect: string, opts?: ClientOptions)
  readonly endpoints: string[]
  readonly state: SessionState
  /** The endpoint of the server the client is connected to, or null. */
  readonly endpoint: string | null
  readonly sessionId: bigint
  readonly passwd: Buffer
  readonly negotiatedMs: number
  readonly lastZxid: bigint
  connect (): Promise<this>
  create (path: string, data?: Data, opts?: { mode?: CreateModeValue; ttl?: number | bigint }): Promise<string>
  create2 (path: string, data?: Data, opts?: { mode?: CreateModeValue; ttl?: number | bigint }): Promise<{ path: string; stat: Stat }>
  delete (path: string, version?: number): Promise<void>
  exists (path: string, opts?: { watch?: false | ((event: WatchEvent) => void) | Watcher }): Promise<Stat | null>
  exists (path: string, opts: { watch: true }): Promise<{ stat: Stat | null; watcher: Watcher }>
  get (path: string, opts?: { watch?: WatchOption }): Promise<{ data: Buffer; stat: Stat; watcher?: Watcher }>
  set (path: string, data: Data, version?: number): Promise<Stat>
  getChildren (path: string, opts?: { watch?: false | ((event: WatchEvent) => void) | Watcher }): Promise<string[]>
  getChildren (path: string, opts: { watch?: WatchOption; stat: true } | { watch: true }): Promise<{ children: string[]; stat: Stat; watcher: Watcher | null }>
  sync (path: string): Promise<string>
  multi (ops: MultiOp[]): Promise<MultiOpResult[]>
  addWatch (path: string, mode?: 'persistent' | 'persistentRecursive', watcher?: Watcher | ((event: WatchEvent) => void)): Promise<Watcher>
  removeWatches (path: string, type?: 'children' | 'data' | 'any' | 'persistent' | 'persistentRecursive'): Promise<void>
  /** Ends the session (its ephemerals go). */
  close (): Promise<void>
  /** Drops the connection, leaving the session to be resumed or to expire. */
  detach (): Promise<void>
  on (event: 'state', listener: (state: SessionState) => void): this
  on (event: 'connected' | 'connecting' | 'expired' | 'closed', listener: () => void): this
  on (event: 'watch', listener: (e: WatchEvent) => void): this
}

export function connect (connect: string, opts?: ClientOptions): Promise<Client>

/** kazoo's lock layout: <path>/<uuid hex>__lock__<seq>, ephemeral sequential. */
export class Lock {
  constructor (client: Client, path: string, identifier?: string)
  readonly isAcquired: boolean
  /** true when held; false when timeoutMs passed first. */
  acquire (opts?: { timeoutMs?: number }): Promise<boolean>
  release (): Promise<void>
  /** Identifiers (node data) of the contenders, holder first. */
  contenders (): Promise<string[]>
}

export class Election {
  constructor (client: Client, path: string, identifier?: string)
  run<T, A extends unknown[]> (fn: (...args: A) => T | Promise<T>, ...args: A): Promise<T>
  cancel (): Promise<void>
  contenders (): Promise<string[]>
}
