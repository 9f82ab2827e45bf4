export { createTopology, isLabNamespace, removeLab, type Role, type Topology, type TopologyOptions } from './topology.js'
export { NAT_FLAVOURS, NAT_RULES_SCRIPT, isNatFlavour, isNated, natRuleset, parseFlavour, type NatFlavour, type NatedFlavour } from './nat.js'
export { carrierClientIp, carrierRouterIp, gatewayAltIp, gatewayIp, slotWanIp, lanPeerIp, lanRouterIp, WAN_PREFIX, WAN_PREFIX_LEN } from './addressing.js'
export { parseWanLink, WAN_LINK_SCRIPT, type WanLink, type WanLinkOptions } from './wan-link.js'
export { cleanupStale, REQUIRED_PREFIX } from './netns.js'
export { LabCommandError, type RunOptions, type RunResult } from './run.js'
export {
  runTrials, summarize, punchExpected, recommendedPeerArgs, defaultTrialTimeoutMs, randomPrefix, assertRoot, DEFAULT_CLI, FAST_FAIL_PEER_ARGS,
  type RunTrialsOptions, type TrialRun, type TrialSummary
} from './trial.js'
export { trialResult, type TrialResult, type TrialPath, type GatewayTransport, type TrialObservation } from './trial-result.js'
export { decide, punchSettingsFromArgs, probeWaitMs, DEFAULT_PUNCH_SETTINGS, type PunchSettings, type Verdict, type TrialEvents } from './trial-decide.js'
export { LabProcess, TailBuffer, parseEventLine, type JsonEvent, type TimedEvent } from './trial-process.js'
export { median, percentile } from './trial-stats.js'
export { judgeEventFiles, type VerdictOptions, type VerdictRun } from './verdict.js'
