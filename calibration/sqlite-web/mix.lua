-- The sqlite-web proof's write-heavy mix (wrk -s): 50 % new rows through sqlite-web's insert
-- form (POST /notes/insert/: one write transaction, an INSERT between BEGIN and COMMIT, then a
-- 302 to the table's last page, which wrk does not follow), 50 % row pages of the 1000 seeded
-- notes (GET /notes/row/KEY/, KEY the URL-safe base64 of the JSON list [id], sqlite-web's row
-- key).
local b = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
local function b64(s)
  return ((s:gsub(".", function(x)
    local r, c = "", x:byte()
    for i = 8, 1, -1 do r = r .. (c % 2 ^ i - c % 2 ^ (i - 1) > 0 and "1" or "0") end
    return r
  end) .. "0000"):gsub("%d%d%d?%d?%d?%d?", function(x)
    if #x < 6 then return "" end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == "1" and 2 ^ (6 - i) or 0) end
    return b:sub(c + 1, c + 1)
  end) .. ({ "", "==", "=" })[#s % 3 + 1])
end
local n = 0
request = function()
  n = n + 1
  if math.random() < 0.5 then
    return wrk.format("GET", "/notes/row/" .. b64("[" .. math.random(1, 1000) .. "]") .. "/")
  end
  return wrk.format("POST", "/notes/insert/", { ["Content-Type"] = "application/x-www-form-urlencoded" },
    "title=note+" .. n .. "&body=written+by+the+load+" .. math.random(1, 1000000) ..
    "&author=user" .. math.random(1, 50) .. "&created=2026-12-05T12%3A00%3A00")
end
