-- 80 % page views of 300 pages, 20 % searches (FTS5)
local words = {"sqlite", "wal", "journal", "page", "cms", "lock", "fsync", "index", "query", "write"}
request = function()
  if math.random() < 0.8 then
    return wrk.format("GET", "/p" .. math.random(0, 299) .. "/")
  else
    return wrk.format("GET", "/search/?query=" .. words[math.random(1, #words)])
  end
end
