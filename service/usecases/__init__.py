"""What both front doors (the API routes and the review pages) call: load, check, act, in one place."""
