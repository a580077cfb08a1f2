-- 70 % ticket views of 300 tickets, 10 % ticket queries (a report over the open tickets),
-- 20 % new tickets (POST /newticket; Trac checks the form token against its cookie).
local token = "0123456789abcdef01234567"
request = function()
  local r = math.random()
  if r < 0.7 then
    return wrk.format("GET", "/ticket/" .. math.random(1, 300))
  elseif r < 0.8 then
    return wrk.format("GET", "/query?status=new&type=" .. ({"defect", "enhancement", "task"})[math.random(1, 3)])
  else
    return wrk.format("POST", "/newticket",
      { ["Content-Type"] = "application/x-www-form-urlencoded", ["Cookie"] = "trac_form_token=" .. token },
      "__FORM_TOKEN=" .. token .. "&field_summary=load+test+ticket&field_description=filed+by+wrk&field_type=defect&submit=Create+ticket")
  end
end
