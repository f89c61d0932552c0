# The campaign model of the marketing example: per campaign, spend (from the ad platform's CSV exports)
# and conversions (orders); after each spend row, the return on ad spend and a budget advice. Campaign
# results come back over the feedback edge and move the target return.
campaigns <- list()
target <- 1.0

state_of <- function(name) {
  s <- campaigns[[name]]
  if (is.null(s)) s <- list(spend = 0, conversions = 0L, revenue = 0, version = 0L)
  s
}

score <- function(body, meta) {
  name <- body$campaign
  s <- state_of(name)
  if (meta$type == "order") {
    s$conversions <- s$conversions + 1L
    s$revenue <- s$revenue + body$amount
    campaigns[[name]] <<- s
    return(NULL)
  }
  if (meta$type == "result") {
    # A cut that still returned well, or a raise that returned badly: move the target towards it.
    target <<- 0.9 * target + 0.1 * max(0.5, min(2, body$roas))
    return(NULL)
  }
  s$spend <- s$spend + body$cost
  s$version <- s$version + 1L
  campaigns[[name]] <<- s
  roas <- if (s$spend > 0) s$revenue / s$spend else 0
  advice <- if (roas > 1.2 * target) "raise" else if (roas < 0.8 * target) "cut" else "hold"
  factor <- switch(advice, raise = 1.2, hold = 1.0, cut = 0.7)
  list(type = "advice", body = list(
    campaign = name, day = body$day, spend = round(s$spend, 2), conversions = s$conversions,
    revenue = round(s$revenue, 2), roas = round(roas, 4), advice = advice,
    budget = round(body$cost * factor, 2), version = s$version
  ))
}
