-- 70 % page views of 300 pages, 10 % searches (FTS5), 20 % publishes (POST /publish/: a random
-- page gets a new revision, published; calibration/wagtail/publish.py)
local words = {"sqlite", "wal", "journal", "page", "cms", "lock", "fsync", "index", "query", "write"}
request = function()
  local r = math.random()
  if r < 0.7 then
    return wrk.format("GET", "/p" .. math.random(0, 299) .. "/")
  elseif r < 0.8 then
    return wrk.format("GET", "/search/?query=" .. words[math.random(1, #words)])
  else
    return wrk.format("POST", "/publish/")
  end
end
