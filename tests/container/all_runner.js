// The scripted runner of the container case `all-runner` (all_cases.py): the
// container's command in agent-vault/all, so agent-init's trusted harness.
// It starts each task's program itself (child_process.spawnSync, no shell in
// between), as a runner that launches Pi or Claude Code per task does.
//
// AV_RUNNER_TASKS: a JSON list of {"name", "argv", "env"?, "unset"?}; argv[0]
// is a path. For each task: a line `RUNNER-TASK <name> start`, the task's
// stdout and stderr (each on the runner's own), then `RUNNER-TASK <name>
// exit <status>` (or `signal <name>`, `error <code>`). The runner exits 1 when
// a task did not exit 0.
'use strict';
const { spawnSync } = require('child_process');

const tasks = JSON.parse(process.env.AV_RUNNER_TASKS || '[]');
let failed = 0;
for (const task of tasks) {
  const env = Object.assign({}, process.env);
  delete env.AV_RUNNER_TASKS;
  for (const name of task.unset || []) delete env[name];
  Object.assign(env, task.env || {});
  process.stdout.write(`RUNNER-TASK ${task.name} start\n`);
  const r = spawnSync(task.argv[0], task.argv.slice(1), {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 300000,
    maxBuffer: 64 << 20,
  });
  if (r.stdout) process.stdout.write(r.stdout);
  if (r.stderr) process.stderr.write(r.stderr);
  const how = r.error ? `error ${r.error.code}` : r.signal ? `signal ${r.signal}` : `exit ${r.status}`;
  process.stdout.write(`RUNNER-TASK ${task.name} ${how}\n`);
  if (r.error || r.status !== 0) failed += 1;
}
process.exit(failed ? 1 : 0);
