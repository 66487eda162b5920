"""Recipe: An ensemble forecaster of Mauna Loa CO2 trained with almost-fair CRPS (AIFS-CRPS, arXiv 2412.15832) against
the same forecaster trained with the standard CRPS, the fair CRPS, and an MSE point forecast.

    python recipes/probabilistic/forecast_co2.py recipes/probabilistic/config.yaml
    hf-margin train probabilistic -- --window 104

The pipeline is hf_margin/demo/probabilistic.py (`hf-margin demo --only probabilistic`); config.yaml holds its default
budget. Writes its results to --out_dir and prints the table.
"""

from hf_margin.demo import recipe_main
from hf_margin.demo.probabilistic import ForecastSetup, run

if __name__ == "__main__":
    recipe_main(ForecastSetup, run, "hf_margin_out/probabilistic")
