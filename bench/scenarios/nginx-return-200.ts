// The ceiling: nginx answering the same status, headers and body from its
// config (`return 200`), same worker count, access log off.
import { WRK_REQUEST_HEADERS } from '../lib/probe.ts';
import { defineScenario } from '../lib/scenario.ts';
import { findNginx, startNginx } from '../lib/servers/nginx.ts';

export default defineScenario({
  id: 'nginx-return-200',
  title: 'nginx return 200 (ceiling)',
  role: 'ceiling',
  conformance: 'same-content',
  // Also driven by plain wrk: the ceiling comparison (inline against nginx return 200).
  plainWrk: true,
  unavailable: () => (findNginx() ? undefined : 'nginx not installed, skipping ceiling (apt-get install -y nginx-light)'),
  start: (ctx) => startNginx(ctx, ` ${WRK_REQUEST_HEADERS}`),
});
