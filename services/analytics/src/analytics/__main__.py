from analytics.main import main

main()
