-- wrk script for calibration/run.
-- args (after --): mode keys_file posts write_pct [warmup]
--   mode: mix (write_pct % comment POSTs, rest page views), view, comment, read
--   page views and comments send a session cookie picked at random from keys_file
--   (returning visitors with a DB session); reads send no cookie.
-- Responses are classified by the app's X-Kind header and counted by status;
-- 503s carrying X-Db-Locked are "database is locked".  Ids of acknowledged (2xx)
-- comments are collected; done() writes everything as JSON to $CALIB_OUT.

local threads = {}
local next_id = 1

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  mode = args[1] or "mix"
  posts = tonumber(args[3] or "1000")
  write_pct = tonumber(args[4] or "10")
  warmup = (args[5] == "warmup")
  keys = {}
  if args[2] and args[2] ~= "" then
    for line in io.lines(args[2]) do
      if #line > 0 then keys[#keys + 1] = line end
    end
  end
  math.randomseed(1000 + tid)
  counts = {}
  acked = {}
  nacked = 0
end

function request()
  local pid = math.random(1, posts)
  local h = {}
  if warmup then h["X-Warmup"] = "1" end
  if mode == "read" then
    return wrk.format("GET", "/read/" .. pid .. "/", h)
  end
  h["Cookie"] = "sessionid=" .. keys[math.random(1, #keys)]
  local m = mode
  if m == "mix" then
    if math.random(1, 100) <= write_pct then m = "comment" else m = "view" end
  end
  if m == "comment" then
    h["Content-Type"] = "application/x-www-form-urlencoded"
    return wrk.format("POST", "/post/" .. pid .. "/comment", h,
                      "body=calibration+comment+" .. math.random(1, 1000000))
  end
  return wrk.format("GET", "/post/" .. pid .. "/", h)
end

function response(status, headers, body)
  local kind = headers["X-Kind"] or headers["x-kind"] or "unknown"
  local key = kind .. " " .. status
  local lk = headers["X-Db-Locked"] or headers["x-db-locked"]
  if lk then key = key .. " locked-" .. lk end
  counts[key] = (counts[key] or 0) + 1
  if kind == "comment" and status >= 200 and status < 300 then
    local id = string.match(body, '"id":%s*(%d+)')
    if id then
      nacked = nacked + 1
      acked[nacked] = tonumber(id)
    end
  end
end

function done(summary, latency, requests)
  local out = os.getenv("CALIB_OUT")
  if not out then return end
  local f = assert(io.open(out, "w"))
  local total = {}
  local ids = {}
  for _, t in ipairs(threads) do
    local c = t:get("counts") or {}
    for k, v in pairs(c) do total[k] = (total[k] or 0) + v end
    local a = t:get("acked") or {}
    for _, id in ipairs(a) do ids[#ids + 1] = id end
  end
  local parts = {}
  for k, v in pairs(total) do parts[#parts + 1] = string.format('"%s": %d', k, v) end
  local e = summary.errors
  f:write("{")
  f:write(string.format('"requests": %d, "duration_us": %d, "bytes": %d, ',
                        summary.requests, summary.duration, summary.bytes))
  f:write(string.format('"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ',
                        e.connect, e.read, e.write, e.status, e.timeout))
  f:write(string.format('"latency_us": {"p50": %d, "p90": %d, "p99": %d, "max": %d, "mean": %.1f}, ',
                        latency:percentile(50), latency:percentile(90), latency:percentile(99),
                        latency.max, latency.mean))
  f:write('"counts": {' .. table.concat(parts, ", ") .. '}, ')
  f:write('"acked_ids": [' .. table.concat(ids, ",") .. ']')
  f:write("}\n")
  f:close()
end
