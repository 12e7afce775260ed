-- wrk script for the DPoP setups: each line of $TOKENS_FILE is "<access token> <proof>", every proof
-- with its own jti, sent once each in order (a proof sent twice is a replay and is refused: the run's
-- non-2xx count shows a file too short for the run).
local lines = {}
local index = 0

function init(args)
  for line in io.lines(os.getenv("TOKENS_FILE")) do
    local token, proof = line:match("^(%S+) (%S+)$")
    if token then lines[#lines + 1] = { token, proof } end
  end
end

function request()
  index = index % #lines + 1
  local entry = lines[index]
  return wrk.format("GET", "/bench", { ["Authorization"] = "DPoP " .. entry[1], ["DPoP"] = entry[2] })
end
