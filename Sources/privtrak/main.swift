print("privtrak")
