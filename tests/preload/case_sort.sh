#!/usr/bin/env bash
# case_sort.sh DATAFILE: sorts a 50 MB text file three ways and prints checksums of the
# results. DATAFILE is generated on first use (deterministically, with an LCG in awk) and
# reused by later runs, so the plain and the preloaded run sort the same bytes.
set -eu
data=$1
for tool in sort awk cksum; do
  command -v "$tool" >/dev/null 2>&1 || { echo "$tool not installed"; exit 77; }
done
if [ ! -s "$data" ]; then
  LC_ALL=C awk 'BEGIN {
    x = 20240601; total = 0; limit = 50 * 1024 * 1024
    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    while (total < limit) {
      x = (x * 69069 + 1) % 4294967296
      line = sprintf("%08x %d %s", x, x % 1000003, substr(letters, x % 23 + 1, 8 + x % 31))
      print line
      total += length(line) + 1
    }
  }' >"$data.tmp.$$"
  mv "$data.tmp.$$" "$data"
fi
export LC_ALL=C
echo "input: $(wc -l <"$data") lines"
sort "$data" >sorted.txt
echo "sort: $(cksum <sorted.txt)"
sort -k2,2n -s "$data" | cksum | sed 's/^/sort -k2n: /'
sort -r -u "$data" | cksum | sed 's/^/sort -r -u: /'
