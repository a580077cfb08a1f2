-- The write-heavy mix (MIX=write): 80 % new tickets (POST /newticket: one write transaction
-- each, an INSERT into ticket between BEGIN and COMMIT; Trac checks the form token against its
-- cookie and answers 303), 20 % ticket views of the 300 seeded tickets.
local token = "0123456789abcdef01234567"
request = function()
  if math.random() < 0.2 then
    return wrk.format("GET", "/ticket/" .. math.random(1, 300))
  end
  return wrk.format("POST", "/newticket",
    { ["Content-Type"] = "application/x-www-form-urlencoded", ["Cookie"] = "trac_form_token=" .. token },
    "__FORM_TOKEN=" .. token .. "&field_summary=load+test+ticket&field_description=filed+by+wrk&field_type=defect&submit=Create+ticket")
end
