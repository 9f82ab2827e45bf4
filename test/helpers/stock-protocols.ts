/** Protocols the stock clients of test/helpers/stock-libp2p.ts serve */
export const ECHO_PROTOCOL = '/stock-test/echo/1.0.0'
export const SINK_PROTOCOL = '/stock-test/sink/1.0.0'
