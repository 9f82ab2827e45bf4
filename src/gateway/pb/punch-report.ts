import { decodeMessage, encodeMessage, enumeration, message, streamMessage } from 'protons-runtime'
import type { Codec, DecodeOptions } from 'protons-runtime'
import type { Uint8ArrayList } from 'uint8arraylist'

export interface PunchReport {
  outcome?: PunchReport.Outcome
  attempts?: number
  msSinceRelay?: number
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

  export function encode (obj: Partial<PunchReport>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, PunchReport.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<PunchReport>): PunchReport {
    return decodeMessage(buf, PunchReport.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<PunchReport>): Generator<PunchReportOutcomeFieldEvent | PunchReportAttemptsFieldEvent | PunchReportMsSinceRelayFieldEvent> {
    return streamMessage(buf, PunchReport.codec(), opts)
  }
}
