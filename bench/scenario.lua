-- wrk script for every scenario of bench/api.py, configured through the environment (see
-- bench/scenarios.py, whose Python request source chooses keys and paths the same way).
--   BENCH_METHOD, BENCH_PATH, BENCH_BODY      the request
--   BENCH_PATHS                               a file of paths, one picked at random per request
--   BENCH_PATHS_ONCE = 1                      take BENCH_PATHS' paths in turn instead, each once
--   BENCH_HEADERS                             extra headers, one "Name: value" per line
--   BENCH_KEYS = none | fixed | unique | uuid | mixed, BENCH_KEY (fixed), BENCH_PREFIX (unique,
--                                             mixed); uuid: a random UUID per request
--   BENCH_SEED                                seeds the random choices (differs per run)
--   BENCH_STATUS_CODES = 1                    count responses per status in a response() hook
-- done() prints one line: BENCH_RESULT {json}.

local keys = os.getenv("BENCH_KEYS") or "none"
local paths_file = os.getenv("BENCH_PATHS")
local paths_once = os.getenv("BENCH_PATHS_ONCE") == "1"
local prefix = os.getenv("BENCH_PREFIX") or "wrk"
local repeat_share = tonumber(os.getenv("BENCH_REPEAT_SHARE") or "0.2")
local recent_keys = tonumber(os.getenv("BENCH_RECENT_KEYS") or "64")

wrk.method = os.getenv("BENCH_METHOD") or "GET"
wrk.path = os.getenv("BENCH_PATH") or "/"
wrk.body = os.getenv("BENCH_BODY")
if wrk.body then
  wrk.headers["Content-Type"] = "application/json"
end
if keys == "fixed" then
  wrk.headers["Idempotency-Key"] = os.getenv("BENCH_KEY")
end
for line in (os.getenv("BENCH_HEADERS") or ""):gmatch("[^\n]+") do
  local name, value = line:match("^([^:]+):%s*(.*)$")
  wrk.headers[name] = value
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
end

local paths = nil
local counter = 0
local taken = 0
local recent = {}
statuses = {}

function init(args)
  math.randomseed(id * 7919 + (tonumber(os.getenv("BENCH_SEED")) or os.time()))
  if paths_file then
    paths = {}
    for line in io.lines(paths_file) do
      paths[#paths + 1] = line
    end
  end
end

local function r16()
  return math.random(0, 0xffff)
end

-- Version 4 layout from 16-bit pieces (each well within what math.random and %x handle).
local function random_uuid()
  return string.format("%04x%04x-%04x-4%03x-%04x-%04x%04x%04x",
    r16(), r16(), r16(), math.random(0, 0xfff), math.random(0x8000, 0xbfff), r16(), r16(), r16())
end

local function next_key()
  if keys == "uuid" then
    return random_uuid()
  end
  if keys == "mixed" and #recent > 0 and math.random() < repeat_share then
    return recent[math.random(#recent)]
  end
  counter = counter + 1
  local key = prefix .. "-" .. id .. "-" .. counter
  -- Filled from index 1 up, without holes: Lua's # is only reliable on a sequence.
  recent[((counter - 1) % recent_keys) + 1] = key
  return key
end

-- Defining request() makes wrk build every request anew (slower), so only when needed.
local new_keys = keys == "unique" or keys == "uuid" or keys == "mixed"
if new_keys or paths_file then
  function request()
    local headers = {}
    for name, value in pairs(wrk.headers) do
      headers[name] = value
    end
    if new_keys then
      headers["Idempotency-Key"] = next_key()
    end
    local path = wrk.path
    if paths and paths_once then
      path = paths[(taken % #paths) + 1]
      taken = taken + 1
    elseif paths then
      path = paths[math.random(#paths)]
    end
    return wrk.format(nil, path, headers)
  end
end

-- A response() hook makes wrk parse every response into Lua; wrk counts status >= 400 anyway
-- (summary.errors.status), so this only runs when per-status counts are asked for.
if os.getenv("BENCH_STATUS_CODES") == "1" then
  function response(status, headers, body)
    statuses[status] = (statuses[status] or 0) + 1
  end
end

function done(summary, latency, requests)
  local totals = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses") or {}) do
      totals[status] = (totals[status] or 0) + n
    end
  end
  local counts = {}
  for status, n in pairs(totals) do
    counts[#counts + 1] = string.format('"%d": %d', status, n)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "p50_us": %.0f, "p99_us": %.0f, '
      .. '"status_errors": %d, "connect": %d, "read": %d, "write": %d, "timeout": %d, '
      .. '"statuses": {%s}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect, e.read, e.write, e.timeout, table.concat(counts, ", ")))
end
