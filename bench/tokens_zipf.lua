-- wrk script: each request carries a token from $TOKENS_FILE drawn at random with Zipf weights (line i
-- with probability proportional to 1 / (i + 1)^$ZIPF, default 1.0): many users, a few busy ones, each
-- user's token reused across requests and, since every connection draws on its own, across connections.
local tokens = {}
local cdf = {}
local threads = 0

-- Runs in wrk's main Lua state once per thread: give each thread its own seed.
function setup(thread)
  threads = threads + 1
  thread:set("seed", threads)
end

function init(args)
  for line in io.lines(os.getenv("TOKENS_FILE")) do
    if #line > 0 then tokens[#tokens + 1] = "Bearer " .. line end
  end
  local s = tonumber(os.getenv("ZIPF") or "1.0")
  local total = 0
  for i = 1, #tokens do
    total = total + (i ^ -s)
    cdf[i] = total
  end
  for i = 1, #tokens do cdf[i] = cdf[i] / total end
  math.randomseed(os.time() * 7919 + (seed or 0))
end

function request()
  local u = math.random()
  local lo, hi = 1, #cdf
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cdf[mid] < u then lo = mid + 1 else hi = mid end
  end
  return wrk.format("GET", "/bench", { ["Authorization"] = tokens[lo] })
end
