#!/usr/bin/env bash
# case_git.sh: builds a small repository with fixed names and dates in the scratch directory,
# then runs log --stat, diff, gc and fsck; every printed line is deterministic.
set -eu
command -v git >/dev/null 2>&1 || { echo "git not installed"; exit 77; }
work=${HAK_TEST_WORKDIR:-$(pwd)}
export HOME="$work" GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null LC_ALL=C TZ=UTC
export GIT_AUTHOR_NAME="Hak Test" GIT_AUTHOR_EMAIL="hak@example.invalid"
export GIT_COMMITTER_NAME="Hak Test" GIT_COMMITTER_EMAIL="hak@example.invalid"
unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_OBJECT_DIRECTORY 2>/dev/null || true
rm -rf "$work/repo"
git -c init.defaultBranch=main init -q "$work/repo"
cd "$work/repo"
for i in 1 2 3 4 5; do
  export GIT_AUTHOR_DATE="2024-01-0${i}T12:00:00+0000" GIT_COMMITTER_DATE="2024-01-0${i}T12:00:00+0000"
  mkdir -p "dir$((i % 2))"
  for j in $(seq 1 "$((i * 3))"); do
    printf 'file %d line %d\n' "$i" "$j" >>"dir$((i % 2))/notes.txt"
  done
  seq "$i" "$((i * 200))" >"numbers$i.txt"
  [ "$i" -lt 4 ] || git rm -q "numbers$((i - 2)).txt"
  git add -A
  git commit -q -m "commit $i" -m "adds numbers$i.txt and notes"
done
git log --stat
git diff HEAD~1
git -c pack.threads=1 gc -q
git count-objects -v | grep -E '^(count|in-pack|packs):'
git fsck --no-progress --strict
git rev-parse HEAD
git cat-file -p 'HEAD^{tree}'
