/* An empty shared library: LD_PRELOADed, it is the floor of any preload
 * (one more object for the loader to map and relocate). */
int bench_empty_preload_marker;
