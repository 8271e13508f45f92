#!/usr/bin/env bash
# Builds the workspace for figure 1 (a coding agent's tool work) in $1
# and one script per kind of work, $1/work-NAME.sh, each run by the harness
# as its child:
#   configure  a real autoconf-generated ./configure (compiler, 16 headers,
#              16 functions, 4 sizeofs, byte order, types, sed/grep/awk/ln) writing config.h
#              and a Makefile
#   make       `make -B -j2` of 40 small C files and a link
#   git        init, add, commit, edit, status, diff, add, commit, log on a
#              scratch repository of 60 files
#   grep       `grep -r` over a copy of /usr/include (~8,000 files here)
#   python     20 `python3 -c "import MODULE"` (20 standard modules)
#   pipelines  100 small shell pipelines (echo | tr | wc, sort | head, ...)
#
# $3 (optional) is the path the work scripts will see the workspace at
# (bench/container.sh: /workspace in the container); default $1.
set -euo pipefail
WS=$1
ROOT=$2
AT=${3:-$1}
mkdir -p "$WS"/{conf,proj/src,tree,gitsrc}

# configure
cat > "$WS/conf/configure.ac" <<'AC'
AC_INIT([benchproj], [1.0])
AC_CONFIG_SRCDIR([hello.c])
AC_CONFIG_HEADERS([config.h])
AC_PROG_CC
AC_PROG_SED
AC_PROG_GREP
AC_PROG_AWK
AC_PROG_LN_S
AC_C_BIGENDIAN
AC_TYPE_SIZE_T
AC_TYPE_PID_T
AC_CHECK_HEADERS([stdio.h stdlib.h string.h unistd.h fcntl.h errno.h sys/stat.h sys/types.h sys/wait.h sys/time.h time.h signal.h pthread.h dlfcn.h locale.h langinfo.h])
AC_CHECK_FUNCS([strdup strndup memmem getline posix_spawn pipe2 dup3 accept4 clock_gettime nanosleep sigaction realpath mkostemp openat fstatat getrandom])
AC_CHECK_SIZEOF([long])
AC_CHECK_SIZEOF([void *])
AC_CHECK_SIZEOF([off_t])
AC_CHECK_SIZEOF([size_t])
AC_CONFIG_FILES([Makefile])
AC_OUTPUT
AC
printf 'int main(void) { return 0; }\n' > "$WS/conf/hello.c"
printf 'all:\n\t@true\n' > "$WS/conf/Makefile.in"
(cd "$WS/conf" && autoheader && autoconf && rm -rf autom4te.cache)

# make: 40 small C files
for i in $(seq -w 1 40); do
    cat > "$WS/proj/src/f$i.c" <<C
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
struct item$i { int id; char name[32]; double weight; };
static int cmp$i(const void *a, const void *b) {
  const struct item$i *x = a, *y = b;
  return (x->weight > y->weight) - (x->weight < y->weight);
}
double work$i(int n) {
  struct item$i *v = calloc(n, sizeof *v);
  double s = 0;
  if (!v) return 0;
  for (int k = 0; k < n; k++) { v[k].id = k; snprintf(v[k].name, sizeof v[k].name, "item-%d", k); v[k].weight = (k * 7919) % 101; }
  qsort(v, n, sizeof *v, cmp$i);
  for (int k = 0; k < n; k++) s += v[k].weight * strlen(v[k].name);
  free(v);
  return s;
}
C
done
{
    printf '#include <stdio.h>\n'
    for i in $(seq -w 1 40); do printf 'double work%s(int);\n' "$i"; done
    printf 'int main(void) { double s = 0;\n'
    for i in $(seq -w 1 40); do printf '  s += work%s(100);\n' "$i"; done
    printf '  printf("%%f\\n", s); return 0; }\n'
} > "$WS/proj/src/main.c"
cat > "$WS/proj/Makefile" <<'MK'
SRC := $(wildcard src/*.c)
OBJ := $(SRC:src/%.c=obj/%.o)
prog: $(OBJ)
	$(CC) -o $@ $(OBJ)
obj/%.o: src/%.c | obj
	$(CC) -O2 -Wall -c -o $@ $<
obj:
	mkdir -p obj
clean:
	rm -rf obj prog
MK

# git: 60 files to commit
cp "$WS"/proj/src/*.c "$WS/gitsrc/"
for i in $(seq 1 19); do seq 1 200 | sed "s/^/line $i /" > "$WS/gitsrc/notes$i.txt"; done

# grep
cp -a /usr/include/. "$WS/tree/"

cat > "$WS/work-configure.sh" <<S
cd "$AT/conf" && ./configure -q >/dev/null
S
cat > "$WS/work-make.sh" <<S
cd "$AT/proj" && make -s -B -j2 >/dev/null
S
cat > "$WS/work-git.sh" <<S
set -e
cd "$AT"
rm -rf repo
mkdir repo
cd repo
g() { git -c user.name=bench -c user.email=bench@example.invalid -c init.defaultBranch=main "\$@"; }
g init -q
cp "$AT"/gitsrc/* .
g add -A
g commit -q -m initial
echo '/* edited */' >> f01.c
sed -i 's/line 3 /line three /' notes3.txt
g status --short >/dev/null
g diff >/dev/null
g add -A
g commit -q -m edit
g log --oneline --stat >/dev/null
g status >/dev/null
S
cat > "$WS/work-grep.sh" <<S
grep -r -c -e ioctl -e struct "$AT/tree" >/dev/null
S
cat > "$WS/work-python.sh" <<'S'
for m in json re subprocess pathlib argparse collections datetime hashlib base64 typing \
         dataclasses itertools functools logging tempfile shutil urllib.parse email.message csv decimal; do
    /usr/bin/python3 -c "import $m" || exit 1
done
S
cat > "$WS/work-pipelines.sh" <<'S'
i=0
while [ $i -lt 25 ]; do
    echo "hello world $i" | tr a-z A-Z | wc -c >/dev/null
    printf '%s\n' c b a "$i" | sort | head -n 1 >/dev/null
    seq 1 50 | grep 5 | wc -l >/dev/null
    echo "a=b;c=$i" | cut -d';' -f2 | sed 's/c=//' >/dev/null
    i=$((i + 1))
done
S
