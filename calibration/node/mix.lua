-- wrk script for calibration/node/proof: 10 % comment POSTs, 90 % page views, of random posts.
-- args (after --): posts write_pct
function init(args)
  posts = tonumber(args[1] or "1000")
  write_pct = tonumber(args[2] or "10")
  math.randomseed(os.time() + math.random(1, 1000000))
end

function request()
  local id = math.random(1, posts)
  if math.random(1, 100) <= write_pct then
    return wrk.format("POST", "/post/" .. id .. "/comment",
      { ["Content-Type"] = "application/x-www-form-urlencoded" }, "body=a+comment+from+wrk")
  end
  return wrk.format("GET", "/post/" .. id .. "/")
end
