# warren's R worker: runs a user's function for a warren process pool.
#
# Started by warren as `Rscript warren_worker.R`; speaks the protocol of docs/process-protocol.md on
# file descriptor 3 (4-byte big-endian length, then UTF-8 JSON, both ways). R cannot open a descriptor
# that is a socket, so two `cat` helpers bridge it to R pipe connections. stdout and stderr stay the
# user's: warren logs each of their lines, tagged with this worker. Needs only the jsonlite package.
#
# User code calls warren_reject("why") to park a message at once (reason `rejected`) instead of
# retrying it.

PROTOCOL <- 2L
MAX_FRAME_BYTES <- 64 * 1024 * 1024
MAX_TRACEBACK <- 4000L
HANDLER <- "score"

con_in <- pipe("exec cat <&3", open = "rb")
con_out <- pipe("exec cat >&3", open = "wb")

write_frame_text <- function(text) {
  payload <- charToRaw(enc2utf8(text))
  n <- length(payload)
  head <- as.raw(c(n %/% 16777216, (n %/% 65536) %% 256, (n %/% 256) %% 256, n %% 256))
  writeBin(c(head, payload), con_out)
  flush(con_out)
}

json_string <- function(s) {
  # A JSON string without jsonlite (used before we know jsonlite is there).
  s <- gsub("\\\\", "\\\\\\\\", s)
  s <- gsub("\"", "\\\\\"", s)
  s <- gsub("\n", "\\\\n", s)
  s <- gsub("\r", "\\\\r", s)
  s <- gsub("\t", "\\\\t", s)
  paste0("\"", s, "\"")
}

fatal <- function(stage, type, message, traceback = "") {
  write_frame_text(paste0(
    "{\"t\":\"fatal\",\"stage\":", json_string(stage), ",\"error\":{\"type\":", json_string(type),
    ",\"message\":", json_string(message), ",\"traceback\":", json_string(traceback), "}}"
  ))
  quit(save = "no", status = 2)
}

if (!requireNamespace("jsonlite", quietly = TRUE)) {
  fatal("import", "packageNotFoundError",
        "the R package jsonlite is missing: apt-get install -y r-cran-jsonlite, or install.packages(\"jsonlite\")")
}

read_frame <- function() {
  head <- readBin(con_in, "raw", 4L)
  if (length(head) < 4L) return(NULL)
  n <- sum(as.numeric(head) * c(16777216, 65536, 256, 1))
  if (n > MAX_FRAME_BYTES) stop("frame over the limit")
  payload <- if (n > 0) readBin(con_in, "raw", n) else raw(0)
  if (length(payload) < n) return(NULL)
  text <- rawToChar(payload)
  Encoding(text) <- "UTF-8"
  jsonlite::fromJSON(text, simplifyVector = TRUE, simplifyDataFrame = FALSE, simplifyMatrix = FALSE)
}

to_json <- function(value) {
  if (is.null(value)) return("null")
  as.character(jsonlite::toJSON(value, auto_unbox = TRUE, null = "null", na = "null", digits = NA))
}

#' Park the message being handled at once, with reason `rejected`, instead of retrying it.
warren_reject <- function(reason = "rejected") {
  stop(structure(
    class = c("warren_reject", "error", "condition"),
    list(message = paste(as.character(reason), collapse = " "), call = sys.call(-1))
  ))
}

# The calls that led to an error, innermost last, without this worker's own frames.
format_calls <- function(calls) {
  lines <- vapply(calls, function(call) paste(deparse(call, nlines = 1L), collapse = ""), "")
  own <- grepl("^(withCallingHandlers|tryCatch|tryCatchList|tryCatchOne|doTryCatch|run_item|main|\\.handleSimpleError|h\\(|stop\\(|lapply|FUN\\(|vapply)", lines)
  lines <- sub("^handler\\(item\\$body, meta\\)", paste0(HANDLER, "(body, meta)"), lines[!own])
  text <- paste(lines, collapse = "\n")
  if (nchar(text) > MAX_TRACEBACK) text <- paste0("...", substr(text, nchar(text) - MAX_TRACEBACK, nchar(text)))
  text
}

describe_error <- function(e, calls) {
  list(type = class(e)[1], message = conditionMessage(e), traceback = calls)
}

# The item's meta: the call's shared metadata it names, with its own fields over it.
meta_of <- function(item, shared) {
  if (is.null(item$shared)) return(item$meta)
  meta <- shared[[item$shared + 1L]]
  for (name in names(item$meta)) meta[[name]] <- item$meta[[name]]
  meta
}

run_item <- function(handler, item, shared) {
  calls <- ""
  meta <- meta_of(item, shared)
  outcome <- tryCatch(
    withCallingHandlers(
      list(ok = handler(item$body, meta)),
      error = function(e) calls <<- format_calls(sys.calls())
    ),
    warren_reject = function(e) list(reject = conditionMessage(e)),
    error = function(e) list(error = describe_error(e, calls))
  )
  if ("ok" %in% names(outcome)) {
    json <- tryCatch(to_json(outcome$ok), error = function(e) e)
    if (inherits(json, "error")) {
      return(to_json(list(invalid = paste("the result is not JSON:", conditionMessage(json)))))
    }
    return(paste0("{\"ok\":", json, "}"))
  }
  to_json(outcome)
}

main <- function() {
  init <- read_frame()
  if (is.null(init)) quit(save = "no", status = 0)
  if (!identical(init$t, "init") || !identical(as.integer(init$protocol), PROTOCOL)) {
    fatal("protocol", "ProtocolError", paste("this worker speaks protocol", PROTOCOL))
  }
  script <- init$script
  handler_name <- if (is.null(init$handler)) "score" else init$handler
  HANDLER <<- handler_name
  env <- new.env(parent = globalenv())
  stage <- "import"
  tryCatch({
    source(script, local = env, keep.source = TRUE)
    stage <- "handler"
    handler <- get0(handler_name, envir = env, mode = "function", inherits = FALSE)
    if (is.null(handler)) stop(paste0(script, " defines no function ", handler_name, "(body, meta)"))
    stage <- "init"
    setup <- get0("init", envir = env, mode = "function", inherits = FALSE)
    if (!is.null(setup)) setup(if (is.null(init$config)) list() else init$config)
  }, error = function(e) {
    fatal(stage, class(e)[1], conditionMessage(e), paste(deparse(conditionCall(e)), collapse = "\n"))
  })
  handler <- get(handler_name, envir = env, mode = "function", inherits = FALSE)
  write_frame_text(to_json(list(
    t = "ready", protocol = PROTOCOL, pid = Sys.getpid(), runtime = R.version.string
  )))
  repeat {
    frame <- read_frame()
    if (is.null(frame) || identical(frame$t, "stop")) break
    if (!identical(frame$t, "call")) next
    results <- vapply(frame$items, function(item) run_item(handler, item, frame$shared), "")
    write_frame_text(paste0(
      "{\"t\":\"result\",\"id\":", format(frame$id, scientific = FALSE),
      ",\"results\":[", paste(results, collapse = ","), "]}"
    ))
  }
  quit(save = "no", status = 0)
}

main()
