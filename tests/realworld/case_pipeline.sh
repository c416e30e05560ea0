#!/usr/bin/env bash
# case_pipeline.sh [MIB]: perl, grep, sort, tar and git over MIB (default 192) MiB of text that
# perl generates deterministically (its own LCG, not rand) in 48 files. perl also counts words in
# a hash of a few hundred thousand keys; grep counts and extracts matches; sort orders everything
# (two threads, a small buffer so it merges temporary files); tar packs the tree deterministically
# and unpacks it again; git commits a quarter of it, rewrites some files, commits again, repacks
# and checks the repository. Printed are counts, listings and sha256 sums only, so a run under
# hakmem (run_same.sh preloads every process of the pipeline) must print what a plain run prints.
set -eu -o pipefail
for tool in perl git grep sort tar sha256sum; do
  command -v "$tool" >/dev/null 2>&1 || { echo "$tool not installed"; exit 77; }
done
mib=${1:-192}
work=${HAK_TEST_WORKDIR:-$(pwd)}
export LC_ALL=C TZ=UTC
cd "$work"
trap 'rm -rf "$work/data" "$work/unpacked" "$work/repo" "$work"/*.tar "$work/sorted.txt"' EXIT

sum() { sha256sum | cut -c1-64; }

# ---- perl: generate the data --------------------------------------------------------------------
mkdir data
perl -e '
  use strict; use warnings;
  my ($files, $bytes) = (48, int($ARGV[0] * 1024 * 1024 / 48));
  my $x = 20240607;
  my $next = sub { $x = ($x * 1103515245 + 12345) % 2147483648; return $x >> 16; };
  my @syll = qw(ka lo mi nu pe ra so ti vu ze ing er an st qu ox);
  my @vocab = map { my $n = 1 + $next->() % 4; join("", map { $syll[$next->() % @syll] } 1 .. $n) }
              1 .. 50000;
  for my $f (0 .. $files - 1) {
    open(my $out, ">", sprintf("data/part%02d.txt", $f)) or die "data: $!";
    my $size = 0;
    while ($size < $bytes) {
      my $line = sprintf("%08x %6d", $next->(), $next->() % 1000000);
      $line .= " " . $vocab[$next->() % @vocab] for 1 .. 3 + $next->() % 9;
      print $out $line, "\n";
      $size += length($line) + 1;
    }
    close($out) or die "data: $!";
  }' "$mib"
echo "generated: $(cat data/*.txt | wc -l) lines, $(cat data/*.txt | wc -c) bytes, $(cat data/*.txt | sum)"

# ---- perl: word counts in a hash ----------------------------------------------------------------
perl -ne '
  my @w = split; shift @w; shift @w; $count{$_}++ for @w; $pair{"$w[0] $w[-1]"}++;
  END {
    my @top = (sort { $count{$b} <=> $count{$a} || $a cmp $b } keys %count)[0 .. 4];
    print "words: ", scalar(keys %count), " distinct, pairs: ", scalar(keys %pair), "\n";
    print "top: ", join(" ", map { "$_=$count{$_}" } @top), "\n";
  }' data/*.txt

# ---- grep -----------------------------------------------------------------------------------
echo "grep -c ing: $(cat data/*.txt | grep -c 'ing')"
echo "grep -E words of 6+ syllable letters: $(grep -hEo '\b(ka|lo|mi|nu){3,}\b' data/*.txt | sort | uniq -c | sort -k1,1nr -k2 | head -n 5 | tr -s ' \n' ' ')"
echo "grep -v -F: $(grep -hvF -e ze -e qu data/*.txt | sum)"
echo "grep -l: $(grep -lE '^0000[0-9a-f]{4} ' data/*.txt | wc -l) files"

# ---- sort -----------------------------------------------------------------------------------
sort -S 16M --parallel=2 -T "$work" data/*.txt >sorted.txt
echo "sort: $(sum <sorted.txt)"
echo "sort -k2,2n -s: $(sort -S 16M --parallel=2 -T "$work" -k2,2n -s data/*.txt | sum)"
echo "sort -u -k3,3: $(sort -S 16M -T "$work" -u -k3,3 data/*.txt | wc -l) lines"
echo "sort -m: $(for f in data/*.txt; do sort -k3 "$f" >"$f.sorted"; done; sort -m -k3 data/*.sorted | sum)"
rm -f data/*.sorted

# ---- tar ------------------------------------------------------------------------------------
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu -cf data.tar data
echo "tar: $(sum <data.tar), $(tar -tf data.tar | wc -l) entries"
mkdir unpacked
tar -xf data.tar -C unpacked
diff -r data unpacked/data >/dev/null && echo "tar round trip: identical"

# ---- git ------------------------------------------------------------------------------------
export HOME="$work" GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_NAME="Hak Test" GIT_AUTHOR_EMAIL="hak@example.invalid"
export GIT_COMMITTER_NAME="Hak Test" GIT_COMMITTER_EMAIL="hak@example.invalid"
export GIT_AUTHOR_DATE="2024-06-07T12:00:00+0000" GIT_COMMITTER_DATE="2024-06-07T12:00:00+0000"
unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_OBJECT_DIRECTORY
git -c init.defaultBranch=main init -q repo
cp data/part0[0-9].txt data/part1[01].txt repo/
cd repo
git add -A
git commit -q -m "twelve parts"
for f in part03.txt part07.txt; do
  perl -i -ne 'print unless $. % 5 == 0; print "edit $.\n" if $. % 1000 == 0' "$f"
done
git mv part11.txt renamed.txt
git add -A
git commit -q -m "edits and a rename"
git log --format='%H %s'
git diff --stat HEAD~1 | tail -n 1
git diff HEAD~1 -- part07.txt | sum
git -c pack.threads=2 repack -a -d -q --window=4
git fsck --strict --no-progress
git count-objects -v | grep -E '^(count|in-pack|packs):'
echo "archive: $(git archive HEAD | sum)"
