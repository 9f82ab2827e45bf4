/**
 * The dependency rule of src/ (checked by test/unit/dependency-rule.test.ts; `npx depcruise src` prints it too):
 * core depends on nothing else in src; protocol folders depend on core and on one another without cycles;
 * config may read protocol types; the roles (gateway, peer) compose protocols and config and never each other;
 * lab and cli sit on top. Cycles between folders are checked by the test, which has the whole graph.
 */
const PROTOCOLS = '(transport|stun|turn|ice-servers|dcutr|punch-report|relay|nat|ice|stations|upgrade|http|metrics)'

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    { name: 'no-circular', severity: 'error', comment: 'no module imports one that imports it back', from: { path: '^src/' }, to: { circular: true } },
    { name: 'core-stands-alone', severity: 'error', comment: 'core is the shared vocabulary: it imports nothing else of src', from: { path: '^src/core/' }, to: { path: '^src/', pathNot: '^src/core/' } },
    { name: 'protocols-below-roles', severity: 'error', comment: 'a protocol never reaches up into config, a role, the lab or the CLI', from: { path: `^src/${PROTOCOLS}/` }, to: { path: '^src/(config|gateway|peer|lab|cli)/' } },
    { name: 'config-below-roles', severity: 'error', comment: 'config describes what roles are given; it does not know the roles', from: { path: '^src/config/' }, to: { path: '^src/(gateway|peer|lab|cli)/' } },
    { name: 'roles-apart', severity: 'error', comment: 'the gateway and the peer share protocols, never each other', from: { path: '^src/gateway/' }, to: { path: '^src/peer/' } },
    { name: 'roles-apart-peer', severity: 'error', comment: 'the gateway and the peer share protocols, never each other', from: { path: '^src/peer/' }, to: { path: '^src/gateway/' } },
    { name: 'roles-below-lab-and-cli', severity: 'error', comment: 'roles are libraries; the lab and the CLI drive them', from: { path: '^src/(gateway|peer)/' }, to: { path: '^src/(lab|cli)/' } },
    { name: 'lab-below-cli', severity: 'error', from: { path: '^src/lab/' }, to: { path: '^src/cli/' } },
    { name: 'src-stands-alone', severity: 'error', comment: 'shipped code never imports tests or benchmarks', from: { path: '^src/' }, to: { path: '^(test|bench)/' } }
  ],
  options: {
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)dist/' }
  }
}
