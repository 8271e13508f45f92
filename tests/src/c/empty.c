/* An empty shared library: preloaded, it measures what loading any
 * library into every process costs (the floor under vault-preload's own
 * per-process cost). Built by av-bench with gcc -shared -fPIC. */
int agent_vault_bench_empty(void) { return 0; }
