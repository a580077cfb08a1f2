-- wrk script for calibration/rails/run: page views (GET /posts/:id) and, write_pct % of the
-- time, comments (POST /posts/:id/comments). Counts responses by kind and status, collects
-- the ids of acknowledged (201) comments and the number of acknowledged page views, and
-- writes them as JSON to $CALIB_OUT in done().  args (after --): posts write_pct
local threads = {}
local next_id = 1

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  posts = tonumber(args[1] or "1000")
  write_pct = tonumber(args[2] or "10")
  math.randomseed(4242 + tid)
  counts = {}
  acked = {}
  nacked = 0
  views = 0
  kinds = {}
end

local last_kind = {}

function request()
  local pid = math.random(1, posts)
  if math.random(1, 100) <= write_pct then
    kinds[#kinds + 1] = "comment"
    return wrk.format("POST", "/posts/" .. pid .. "/comments", {["Content-Length"] = "0"})
  end
  kinds[#kinds + 1] = "view"
  return wrk.format("GET", "/posts/" .. pid)
end

function response(status, headers, body)
  local kind = "view"
  if status == 201 or string.match(body or "", '^{"id":%d+}$') then kind = "comment" end
  local err = headers["X-Db-Error"] or headers["x-db-error"]
  local key = status .. (err and (" " .. err) or "")
  counts[key] = (counts[key] or 0) + 1
  if status == 201 then
    local id = string.match(body, '"id":%s*(%d+)')
    if id then
      nacked = nacked + 1
      acked[nacked] = tonumber(id)
    end
  elseif status == 200 then
    views = views + 1
  end
end

function done(summary, latency, requests)
  local out = os.getenv("CALIB_OUT")
  if not out then return end
  local f = assert(io.open(out, "w"))
  local total, ids, nviews = {}, {}, 0
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("counts") or {}) do total[k] = (total[k] or 0) + v end
    for _, id in ipairs(t:get("acked") or {}) do ids[#ids + 1] = id end
    nviews = nviews + (t:get("views") or 0)
  end
  local parts = {}
  for k, v in pairs(total) do parts[#parts + 1] = string.format('"%s": %d', k, v) end
  local idparts = {}
  for _, id in ipairs(ids) do idparts[#idparts + 1] = tostring(id) end
  f:write(string.format(
    '{"requests": %d, "duration_us": %d, "errors_socket": %d, "timeouts": %d, "p50_us": %d, "p99_us": %d, "mean_us": %.1f, "max_us": %d, "statuses": {%s}, "acked_views": %d, "acked_comment_ids": [%s]}\n',
    summary.requests, summary.duration, summary.errors.connect + summary.errors.read + summary.errors.write,
    summary.errors.timeout, latency:percentile(50), latency:percentile(99), latency.mean, latency.max,
    table.concat(parts, ", "), nviews, table.concat(idparts, ",")))
  f:close()
end
