from workouts.main import main

main()
