-- wrk script for the npm workload: cycles through the requests an
-- `npm install` of the bench project makes (a packument, abbreviated as npm
-- asks for it, and a tarball per package), under a path prefix.
--   wrk ... -s npm-replay.lua URL -- PATHS_FILE PREFIX
local paths, prefix, i = {}, "/", 0
local corgi = "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*"

function init(args)
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  prefix = args[2]
end

function request()
  i = i % #paths + 1
  local p = paths[i]
  local headers = {}
  if not p:find("/-/", 1, true) then headers["Accept"] = corgi end
  return wrk.format("GET", prefix .. p, headers)
end
