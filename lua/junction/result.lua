-- junction.result: a failure passed on as the C core returns it.
--
-- A database failure or a refused value is nil, message, code, and a
-- fourth value, details, only when there are details (a refused value's
-- fields, PostgreSQL's sqlstate): 3 values or 4, never a trailing nil.  Lua
-- code that passes a failure on returns it through fail, so that the count
-- does not depend on which path the failure took.
local M = {}

-- nil, msg, code[, details]: the fourth value only when details is not nil.
function M.fail(msg, code, details)
  if details == nil then return nil, msg, code end
  return nil, msg, code, details
end

return M
