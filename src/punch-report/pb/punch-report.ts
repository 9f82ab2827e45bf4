import { decodeMessage, encodeMessage, enumeration, message, streamMessage } from 'protons-runtime'
import type { Codec, DecodeOptions } from 'protons-runtime'
import type { Uint8ArrayList } from 'uint8arraylist'

export interface PunchReport {
  outcome?: PunchReport.Outcome
  attempts?: number
  msSinceRelay?: number
  strategy?: PunchReport.Strategy
  sockets?: number
  probes?: number
  durationMs?: number
  mapping?: PunchReport.Mapping
  natType?: PunchReport.NatType
  remotePeer?: Uint8Array<ArrayBuffer>
}

export namespace PunchReport {
  export enum Outcome {
    UNKNOWN = 'UNKNOWN',
    SUCCESS = 'SUCCESS',
    FAILURE = 'FAILURE',
    SKIPPED = 'SKIPPED'
  }

  enum __OutcomeValues {
    UNKNOWN = 0,
    SUCCESS = 1,
    FAILURE = 2,
    SKIPPED = 3
  }

  export namespace Outcome {
    export const codec = (): Codec<Outcome> => {
      return enumeration<Outcome>(__OutcomeValues)
    }
  }

  export enum Strategy {
    NONE = 'NONE',
    DCUTR = 'DCUTR',
    BIRTHDAY = 'BIRTHDAY',
    SKIP = 'SKIP'
  }

  enum __StrategyValues {
    NONE = 0,
    DCUTR = 1,
    BIRTHDAY = 2,
    SKIP = 3
  }

  export namespace Strategy {
    export const codec = (): Codec<Strategy> => {
      return enumeration<Strategy>(__StrategyValues)
    }
  }

  export enum Mapping {
    MAPPING_UNKNOWN = 'MAPPING_UNKNOWN',
    OPEN = 'OPEN',
    ENDPOINT_INDEPENDENT = 'ENDPOINT_INDEPENDENT',
    SEQUENTIAL = 'SEQUENTIAL',
    RANDOM = 'RANDOM'
  }

  enum __MappingValues {
    MAPPING_UNKNOWN = 0,
    OPEN = 1,
    ENDPOINT_INDEPENDENT = 2,
    SEQUENTIAL = 3,
    RANDOM = 4
  }

  export namespace Mapping {
    export const codec = (): Codec<Mapping> => {
      return enumeration<Mapping>(__MappingValues)
    }
  }

  export enum NatType {
    NAT_TYPE_UNKNOWN = 'NAT_TYPE_UNKNOWN',
    NO_NAT = 'NO_NAT',
    FULL_CONE = 'FULL_CONE',
    RESTRICTED_CONE = 'RESTRICTED_CONE',
    PORT_RESTRICTED_CONE = 'PORT_RESTRICTED_CONE',
    SYMMETRIC = 'SYMMETRIC',
    UDP_BLOCKED = 'UDP_BLOCKED'
  }

  enum __NatTypeValues {
    NAT_TYPE_UNKNOWN = 0,
    NO_NAT = 1,
    FULL_CONE = 2,
    RESTRICTED_CONE = 3,
    PORT_RESTRICTED_CONE = 4,
    SYMMETRIC = 5,
    UDP_BLOCKED = 6
  }

  export namespace NatType {
    export const codec = (): Codec<NatType> => {
      return enumeration<NatType>(__NatTypeValues)
    }
  }

  let _codec: Codec<PunchReport>

  export const codec = (): Codec<PunchReport> => {
    if (_codec == null) {
      _codec = message<PunchReport>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.outcome != null) {
          w.uint32(8)
          PunchReport.Outcome.codec().encode(obj.outcome, w)
        }

        if (obj.attempts != null) {
          w.uint32(16)
          w.uint32(obj.attempts)
        }

        if (obj.msSinceRelay != null) {
          w.uint32(24)
          w.uint32(obj.msSinceRelay)
        }

        if (obj.strategy != null) {
          w.uint32(32)
          PunchReport.Strategy.codec().encode(obj.strategy, w)
        }

        if (obj.sockets != null) {
          w.uint32(40)
          w.uint32(obj.sockets)
        }

        if (obj.probes != null) {
          w.uint32(48)
          w.uint32(obj.probes)
        }

        if (obj.durationMs != null) {
          w.uint32(56)
          w.uint32(obj.durationMs)
        }

        if (obj.mapping != null) {
          w.uint32(64)
          PunchReport.Mapping.codec().encode(obj.mapping, w)
        }

        if (obj.natType != null) {
          w.uint32(72)
          PunchReport.NatType.codec().encode(obj.natType, w)
        }

        if (obj.remotePeer != null) {
          w.uint32(82)
          w.bytes(obj.remotePeer)
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
              obj.outcome = PunchReport.Outcome.codec().decode(reader)
              break
            }
            case 2: {
              obj.attempts = reader.uint32()
              break
            }
            case 3: {
              obj.msSinceRelay = reader.uint32()
              break
            }
            case 4: {
              obj.strategy = PunchReport.Strategy.codec().decode(reader)
              break
            }
            case 5: {
              obj.sockets = reader.uint32()
              break
            }
            case 6: {
              obj.probes = reader.uint32()
              break
            }
            case 7: {
              obj.durationMs = reader.uint32()
              break
            }
            case 8: {
              obj.mapping = PunchReport.Mapping.codec().decode(reader)
              break
            }
            case 9: {
              obj.natType = PunchReport.NatType.codec().decode(reader)
              break
            }
            case 10: {
              obj.remotePeer = reader.bytes()
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
                field: `${prefix}.outcome`,
                value: PunchReport.Outcome.codec().decode(reader)
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.attempts`,
                value: reader.uint32()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.msSinceRelay`,
                value: reader.uint32()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.strategy`,
                value: PunchReport.Strategy.codec().decode(reader)
              }
              break
            }
            case 5: {
              yield {
                field: `${prefix}.sockets`,
                value: reader.uint32()
              }
              break
            }
            case 6: {
              yield {
                field: `${prefix}.probes`,
                value: reader.uint32()
              }
              break
            }
            case 7: {
              yield {
                field: `${prefix}.durationMs`,
                value: reader.uint32()
              }
              break
            }
            case 8: {
              yield {
                field: `${prefix}.mapping`,
                value: PunchReport.Mapping.codec().decode(reader)
              }
              break
            }
            case 9: {
              yield {
                field: `${prefix}.natType`,
                value: PunchReport.NatType.codec().decode(reader)
              }
              break
            }
            case 10: {
              yield {
                field: `${prefix}.remotePeer`,
                value: reader.bytes()
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

  export interface PunchReportOutcomeFieldEvent {
    field: '$.outcome'
    value: PunchReport.Outcome
  }

  export interface PunchReportAttemptsFieldEvent {
    field: '$.attempts'
    value: number
  }

  export interface PunchReportMsSinceRelayFieldEvent {
    field: '$.msSinceRelay'
    value: number
  }

  export interface PunchReportStrategyFieldEvent {
    field: '$.strategy'
    value: PunchReport.Strategy
  }

  export interface PunchReportSocketsFieldEvent {
    field: '$.sockets'
    value: number
  }

  export interface PunchReportProbesFieldEvent {
    field: '$.probes'
    value: number
  }

  export interface PunchReportDurationMsFieldEvent {
    field: '$.durationMs'
    value: number
  }

  export interface PunchReportMappingFieldEvent {
    field: '$.mapping'
    value: PunchReport.Mapping
  }

  export interface PunchReportNatTypeFieldEvent {
    field: '$.natType'
    value: PunchReport.NatType
  }

  export interface PunchReportRemotePeerFieldEvent {
    field: '$.remotePeer'
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<PunchReport>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, PunchReport.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<PunchReport>): PunchReport {
    return decodeMessage(buf, PunchReport.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<PunchReport>): Generator<PunchReportOutcomeFieldEvent | PunchReportAttemptsFieldEvent | PunchReportMsSinceRelayFieldEvent | PunchReportStrategyFieldEvent | PunchReportSocketsFieldEvent | PunchReportProbesFieldEvent | PunchReportDurationMsFieldEvent | PunchReportMappingFieldEvent | PunchReportNatTypeFieldEvent | PunchReportRemotePeerFieldEvent> {
    return streamMessage(buf, PunchReport.codec(), opts)
  }
}
