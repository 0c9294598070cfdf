-- Runs the MaintenancePlan health check the way Argo CD does, once per sample object.
--
--   lua5.1 harness.lua HEALTH_SCRIPT < cases.lua
--
-- cases.lua is a Lua chunk returning a list of {name = "...", obj = {...}}. The health
-- script runs with `obj` as its only input and only the libraries Argo CD opens for a
-- custom health check (base, table and a small os); the string library and string methods
-- are out of reach, as they are in Argo CD. One JSON object per case goes to standard
-- output: {"name": ..., "status": ..., "message": ...} or {"name": ..., "error": ...}.

local script_path = arg[1]
if script_path == nil then
  io.stderr:write("usage: lua5.1 harness.lua HEALTH_SCRIPT < cases.lua\n")
  os.exit(2)
end

local check, load_error = loadfile(script_path)
if check == nil then
  io.stderr:write("cannot load " .. script_path .. ": " .. tostring(load_error) .. "\n")
  os.exit(2)
end

local cases_chunk, cases_error = loadstring(io.read("*a"), "cases")
if cases_chunk == nil then
  io.stderr:write("cannot load the cases: " .. tostring(cases_error) .. "\n")
  os.exit(2)
end
local cases = cases_chunk()

local function copy(source, names)
  local out = {}
  for _, name in ipairs(names) do
    out[name] = source[name]
  end
  return out
end

local BASE = {
  "assert", "error", "ipairs", "next", "pairs", "pcall", "print", "rawequal", "rawget",
  "rawset", "select", "getmetatable", "setmetatable", "tonumber", "tostring", "type",
  "unpack", "xpcall", "_VERSION",
}

local function environment(obj)
  local env = copy(_G, BASE)
  env.table = copy(table, { "concat", "insert", "maxn", "remove", "sort" })
  env.os = copy(os, { "clock", "date", "difftime", "time" })
  env.obj = obj
  env._G = env
  return env
end

local function json_string(s)
  s = tostring(s)
  s = s:gsub('[%c"\\]', function(c)
    if c == '"' then return '\\"' end
    if c == "\\" then return "\\\\" end
    return string.format("\\u%04x", c:byte())
  end)
  return '"' .. s .. '"'
end

local string_methods = getmetatable("")

local function run(obj)
  local chunk = check
  setfenv(chunk, environment(obj))
  -- Argo CD opens no string library, so `("x"):len()` fails there: make it fail here too.
  local saved_index = string_methods.__index
  string_methods.__index = nil
  local ok, result = pcall(chunk)
  string_methods.__index = saved_index
  if not ok then
    return nil, "the script failed: " .. tostring(result)
  end
  if type(result) ~= "table" then
    return nil, "the script returned a " .. type(result) .. ", not a table"
  end
  if type(result.status) ~= "string" or type(result.message) ~= "string" then
    return nil, "status and message must be strings, got " .. type(result.status) ..
      " and " .. type(result.message)
  end
  return result
end

for _, case in ipairs(cases) do
  local hs, problem = run(case.obj)
  if hs == nil then
    print('{"name": ' .. json_string(case.name) .. ', "error": ' .. json_string(problem) .. "}")
  else
    print('{"name": ' .. json_string(case.name) .. ', "status": ' .. json_string(hs.status) ..
      ', "message": ' .. json_string(hs.message) .. "}")
  end
end
