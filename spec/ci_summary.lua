-- busted output handler: the normal plainTerminal output, then one machine line
--   BUSTED_COUNTS passed=N failed=N errors=N pending=N
-- usage: busted -o spec/ci_summary.lua ...   (.ci/busted.sh sums these lines)
return function(options)
  local busted = require 'busted'
  local handler = require 'busted.outputHandlers.plainTerminal'(options)
  busted.subscribe({ 'suite', 'end' }, function()
    io.write(string.format("BUSTED_COUNTS passed=%d failed=%d errors=%d pending=%d\n",
      #handler.successes, #handler.failures, #handler.errors, #handler.pendings))
    io.flush()
    return nil, true
  end)
  return handler
end
