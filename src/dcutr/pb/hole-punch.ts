import { decodeMessage, encodeMessage, enumeration, MaxLengthError, message, streamMessage } from 'protons-runtime'
import type { Codec, DecodeOptions } from 'protons-runtime'
import type { Uint8ArrayList } from 'uint8arraylist'

export interface HolePunch {
  type?: HolePunch.Type
  observedAddresses: Uint8Array<ArrayBuffer>[]
  mapping?: NatMapping
  probeToken?: Uint8Array<ArrayBuffer>
  localAddresses: Uint8Array<ArrayBuffer>[]
}

export namespace HolePunch {
  export enum Type {
    UNUSED = 'UNUSED',
    CONNECT = 'CONNECT',
    SYNC = 'SYNC'
  }

  enum __TypeValues {
    UNUSED = 0,
    CONNECT = 100,
    SYNC = 300
  }

  export namespace Type {
    export const codec = (): Codec<Type> => {
      return enumeration<Type>(__TypeValues)
    }
  }

  let _codec: Codec<HolePunch>

  export const codec = (): Codec<HolePunch> => {
    if (_codec == null) {
      _codec = message<HolePunch>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.type != null) {
          w.uint32(8)
          HolePunch.Type.codec().encode(obj.type, w)
        }

        if (obj.observedAddresses != null && obj.observedAddresses.length > 0) {
          for (const value of obj.observedAddresses) {
            w.uint32(18)
            w.bytes(value)
          }
        }

        if (obj.mapping != null) {
          w.uint32(8002)
          NatMapping.codec().encode(obj.mapping, w)
        }

        if (obj.probeToken != null) {
          w.uint32(8010)
          w.bytes(obj.probeToken)
        }

        if (obj.localAddresses != null && obj.localAddresses.length > 0) {
          for (const value of obj.localAddresses) {
            w.uint32(8018)
            w.bytes(value)
          }
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          observedAddresses: [],
          localAddresses: []
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.type = HolePunch.Type.codec().decode(reader)
              break
            }
            case 2: {
              if (opts.limits?.observedAddresses != null && obj.observedAddresses.length === opts.limits.observedAddresses) {
                throw new MaxLengthError('Decode error - repeated field "observedAddresses" had too many elements')
              }

              obj.observedAddresses.push(reader.bytes())
              break
            }
            case 1000: {
              obj.mapping = NatMapping.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.mapping
              })
              break
            }
            case 1001: {
              obj.probeToken = reader.bytes()
              break
            }
            case 1002: {
              if (opts.limits?.localAddresses != null && obj.localAddresses.length === opts.limits.localAddresses) {
                throw new MaxLengthError('Decode error - repeated field "localAddresses" had too many elements')
              }

              obj.localAddresses.push(reader.bytes())
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const obj = {
          observedAddresses: 0,
          localAddresses: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.type`,
                value: HolePunch.Type.codec().decode(reader)
              }
              break
            }
            case 2: {
              if (opts.limits?.observedAddresses != null && obj.observedAddresses === opts.limits.observedAddresses) {
                throw new MaxLengthError('Streaming decode error - repeated field "observedAddresses" had too many elements')
              }

              yield {
                field: `${prefix}.observedAddresses[]`,
                index: obj.observedAddresses,
                value: reader.bytes()
              }

              obj.observedAddresses++

              break
            }
            case 1000: {
              yield * NatMapping.codec().stream(reader, reader.uint32(), `${prefix}.mapping`, {
                limits: opts.limits?.mapping
              })

              break
            }
            case 1001: {
              yield {
                field: `${prefix}.probeToken`,
                value: reader.bytes()
              }
              break
            }
            case 1002: {
              if (opts.limits?.localAddresses != null && obj.localAddresses === opts.limits.localAddresses) {
                throw new MaxLengthError('Streaming decode error - repeated field "localAddresses" had too many elements')
              }

              yield {
                field: `${prefix}.localAddresses[]`,
                index: obj.localAddresses,
                value: reader.bytes()
              }

              obj.localAddresses++

              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface HolePunchTypeFieldEvent {
    field: '$.type'
    value: HolePunch.Type
  }

  export interface HolePunchObservedAddressesFieldEvent {
    field: '$.observedAddresses[]'
    index: number
    value: Uint8Array<ArrayBuffer>
  }

  export interface HolePunchMappingKindFieldEvent {
    field: '$.mapping.kind'
    value: NatMapping.Kind
  }

  export interface HolePunchMappingDeltaFieldEvent {
    field: '$.mapping.delta'
    value: number
  }

  export interface HolePunchProbeTokenFieldEvent {
    field: '$.probeToken'
    value: Uint8Array<ArrayBuffer>
  }

  export interface HolePunchLocalAddressesFieldEvent {
    field: '$.localAddresses[]'
    index: number
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<HolePunch>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, HolePunch.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<HolePunch>): HolePunch {
    return decodeMessage(buf, HolePunch.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<HolePunch>): Generator<HolePunchTypeFieldEvent | HolePunchObservedAddressesFieldEvent | HolePunchMappingKindFieldEvent | HolePunchMappingDeltaFieldEvent | HolePunchProbeTokenFieldEvent | HolePunchLocalAddressesFieldEvent> {
    return streamMessage(buf, HolePunch.codec(), opts)
  }
}

export interface NatMapping {
  kind?: NatMapping.Kind
  delta?: number
}

export namespace NatMapping {
  export enum Kind {
    UNKNOWN = 'UNKNOWN',
    OPEN = 'OPEN',
    ENDPOINT_INDEPENDENT = 'ENDPOINT_INDEPENDENT',
    SEQUENTIAL = 'SEQUENTIAL',
    RANDOM = 'RANDOM'
  }

  enum __KindValues {
    UNKNOWN = 0,
    OPEN = 1,
    ENDPOINT_INDEPENDENT = 2,
    SEQUENTIAL = 3,
    RANDOM = 4
  }

  export namespace Kind {
    export const codec = (): Codec<Kind> => {
      return enumeration<Kind>(__KindValues)
    }
  }

  let _codec: Codec<NatMapping>

  export const codec = (): Codec<NatMapping> => {
    if (_codec == null) {
      _codec = message<NatMapping>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.kind != null) {
          w.uint32(8)
          NatMapping.Kind.codec().encode(obj.kind, w)
        }

        if (obj.delta != null) {
          w.uint32(16)
          w.sint32(obj.delta)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {}

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.kind = NatMapping.Kind.codec().decode(reader)
              break
            }
            case 2: {
              obj.delta = reader.sint32()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.kind`,
                value: NatMapping.Kind.codec().decode(reader)
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.delta`,
                value: reader.sint32()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface NatMappingKindFieldEvent {
    field: '$.kind'
    value: NatMapping.Kind
  }

  export interface NatMappingDeltaFieldEvent {
    field: '$.delta'
    value: number
  }

  export function encode (obj: Partial<NatMapping>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, NatMapping.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<NatMapping>): NatMapping {
    return decodeMessage(buf, NatMapping.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<NatMapping>): Generator<NatMappingKindFieldEvent | NatMappingDeltaFieldEvent> {
    return streamMessage(buf, NatMapping.codec(), opts)
  }
}
