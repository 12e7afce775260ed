-- wrk script: each request carries the next token from $TOKENS_FILE (round robin), so no cache of
-- fewer entries than the file has lines can serve them.
local tokens = {}
local index = 0

function init(args)
  local path = os.getenv("TOKENS_FILE")
  for line in io.lines(path) do
    if #line > 0 then tokens[#tokens + 1] = line end
  end
  index = math.random(#tokens)
end

function request()
  index = index % #tokens + 1
  return wrk.format("GET", "/bench", { ["Authorization"] = "Bearer " .. tokens[index] })
end
