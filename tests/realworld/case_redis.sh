#!/usr/bin/env bash
# case_redis.sh: starts redis-server on a free loopback port (scratch directory, no persistence,
# debug commands for local clients only), drives it with redis-benchmark (100,000 requests per
# command over strings, counters, lists, sets, hashes and sorted sets, pipelined), then writes
# known keys of every type with redis-cli and Lua, reads them back (values, lengths, encodings,
# per-key digests), round-trips a 16 MiB value, grows it, frees big keys from redis's lazy-free
# thread, and checks the server still answers and exits cleanly. Everything printed is
# deterministic (the benchmark's rates are not printed), so a run under hakmem, which run_same.sh
# preloads into the server and its clients, must print what a plain run prints. Preloaded, the
# server's own hakmem statistics must also count the benchmark's allocations. The server is
# always killed on exit.
set -u
for tool in redis-server redis-cli redis-benchmark sha256sum; do
  command -v "$tool" >/dev/null 2>&1 || { echo "$tool not installed"; exit 77; }
done
work=${HAK_TEST_WORKDIR:-$(pwd)}
export LC_ALL=C

server_pid=
stop_server() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
    server_pid=
  fi
}
trap stop_server EXIT
trap 'exit 1' INT TERM

port_busy() { grep -qi ":$(printf '%04X' "$1") " /proc/net/tcp /proc/net/tcp6 2>/dev/null; }

# start_server: a server on a random free port, answering PING; up to five ports are tried.
start_server() {
  local try i
  for try in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 40000))
    port_busy "$port" && continue
    redis-server --port "$port" --bind 127.0.0.1 --dir "$work" --save "" --appendonly no \
      --daemonize no --databases 4 --enable-debug-command local --logfile "" \
      >"$work/server.$try.out" 2>"$work/server.err" &
    server_pid=$!
    for i in $(seq 1 100); do
      if ! kill -0 "$server_pid" 2>/dev/null; then
        break
      fi
      [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && return 0
      sleep 0.1
    done
    stop_server
  done
  echo "FAIL: redis-server did not start; its last output:" >&2
  tail -n 20 "$work"/server.*.out >&2
  return 1
}

start_server || exit 1
cli() { redis-cli -p "$port" -n 1 "$@"; }

# ---- load: every command type the benchmark has, 100,000 requests each, into database 0 -------
redis-benchmark -p "$port" -n 100000 -c 8 -P 16 -r 10000 -d 64 -q \
  -t set,get,incr,lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,lrange_100 >"$work/bench.out" 2>&1
echo "benchmark exit status: $?"
echo "benchmark results:" $(tr '\r' '\n' <"$work/bench.out" | grep 'requests per second' | sed 's/:.*//')

# ---- known keys of every type in database 1 ---------------------------------------------------
cli set greeting "hello from the realworld test"
cli append greeting ", appended"
cli get greeting
cli incrby counter 41
cli incr counter
cli eval "for i = 1, 20000 do redis.call('SET', 'str:' .. i, string.rep('v', i % 300)) end
  return redis.call('DBSIZE')" 0
cli eval "for i = 1, 30000 do redis.call('RPUSH', 'list', 'item-' .. i) end
  for i = 1, 500 do redis.call('LPUSH', 'smalllist', i) end return redis.call('LLEN', 'list')" 0
cli eval "for i = 1, 20000 do redis.call('HSET', 'hash', 'field' .. i, i * 3) end
  for i = 1, 50 do redis.call('HSET', 'smallhash', 'f' .. i, i) end return redis.call('HLEN', 'hash')" 0
cli eval "for i = 1, 20000 do redis.call('SADD', 'set', 'member-' .. (i * 7919 % 100003)) end
  for i = 1, 100 do redis.call('SADD', 'intset', i * i) end return redis.call('SCARD', 'set')" 0
cli eval "for i = 1, 20000 do redis.call('ZADD', 'zset', (i * 7919) % 100003, 'z' .. i) end
  return redis.call('ZCARD', 'zset')" 0
cli eval "for i = 1, 5000 do redis.call('XADD', 'stream', '1-' .. i, 'n', i, 'sq', i * i) end
  return redis.call('XLEN', 'stream')" 0

echo "-- read back"
cli strlen str:299
cli get str:7
cli lrange list 0 4
cli lindex list 29999
cli lrange smalllist -3 -1
cli hget hash field777
cli hmget smallhash f1 f50 f51
cli sismember set member-7919
cli smembers intset | sort -n | sha256sum
cli zrange zset 0 4 withscores
cli zrangebyscore zset 100000 +inf withscores
cli zscore zset z20000
cli xrange stream 1-4998 + count 3
cli lpop list 3
cli rpop list
cli srem set member-7919
cli hdel hash field1 field2 nofield
for key in greeting counter str:1 list smalllist hash smallhash set intset zset stream; do
  echo "$key: $(cli type "$key") $(cli object encoding "$key") $(cli debug digest-value "$key")"
done
cli dbsize

echo "-- large value"
head -c $((16 * 1024 * 1024)) /dev/zero | tr '\0' 'q' >"$work/big.in"
cli -x set big <"$work/big.in"
cli strlen big
cli getrange big 0 9
cli setrange big $((32 * 1024 * 1024 - 4)) tail
cli strlen big
cli --raw get big | head -c $((16 * 1024 * 1024)) | cmp -s - "$work/big.in" &&
  echo "big value: first 16 MiB as written"
cli getrange big -8 -1
cli --raw get big >"$work/big.out"
wc -c <"$work/big.out"

echo "-- frees on the lazy-free thread"
cli unlink list hash set zset stream big
cli dbsize
cli flushdb async
cli dbsize
redis-cli -p "$port" -n 0 flushall async
redis-cli -p "$port" -n 0 dbsize
redis-cli -p "$port" info memory | grep -E '^mem_allocator:' | tr -d '\r'
echo "ping: $(redis-cli -p "$port" ping)"

# ---- clean exit -----------------------------------------------------------------------------
redis-cli -p "$port" shutdown nosave >/dev/null 2>&1
wait "$server_pid"
echo "server exit status: $?"
server_pid=
case ${LD_PRELOAD:-} in
  *hakmem*)
    if ! grep -Eq '^hakmem: totals allocs=[0-9]{6,}' "$work/server.err"; then
      echo "FAIL: the preloaded server's stderr has no 'hakmem: totals allocs=' line with at" \
           "least 100000 allocations" >&2
      tail -n 20 "$work/server.err" >&2
      exit 1
    fi
    ;;
esac
rm -f "$work/big.in" "$work/big.out"
