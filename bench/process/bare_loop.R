# The ceiling: a bare loop behind the same pipes (fd 3 through cat, the same frames) doing the same
# arithmetic, with no handshake, no error handling and no user-function call.
con_in <- pipe("exec cat <&3", open = "rb")
con_out <- pipe("exec cat >&3", open = "wb")
repeat {
  head <- readBin(con_in, "raw", 4L)
  if (length(head) < 4L) break
  n <- sum(as.numeric(head) * c(16777216, 65536, 256, 1))
  frame <- jsonlite::fromJSON(rawToChar(readBin(con_in, "raw", n)), simplifyVector = TRUE,
                              simplifyDataFrame = FALSE, simplifyMatrix = FALSE)
  results <- lapply(frame$items, function(i) {
    list(ok = list(type = "scored", body = list(n = i$body$n, score = i$body$x * 0.5 + 0.1)))
  })
  payload <- charToRaw(as.character(jsonlite::toJSON(list(t = "result", id = frame$id, results = results),
                                                     auto_unbox = TRUE, digits = NA)))
  len <- length(payload)
  writeBin(c(as.raw(c(len %/% 16777216, (len %/% 65536) %% 256, (len %/% 256) %% 256, len %% 256)), payload), con_out)
  flush(con_out)
}
