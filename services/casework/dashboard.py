"""The county and township dashboard: a static page that calls the report APIs.

The page is plain HTML and JavaScript in `web/` (served files under `web/assets/`), with
Apache ECharts fetched from the npm registry into `web/assets/vendor/` by
`make dashboard-assets` (never committed).  It takes the
caller's JWT (pasted, or from the URL fragment, which never reaches a server log) and asks
the APIs for everything it shows, so it sees exactly what the token's region may see.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

router = APIRouter(include_in_schema=False)


def web_dir() -> Path:
    """Return the directory of the dashboard's static files."""
    return Path(str(resources.files("services.casework").joinpath("web")))


def vendor_ready() -> bool:
    """Tell whether `make dashboard-assets` has put ECharts in place."""
    return (web_dir() / "assets" / "vendor" / "echarts.min.js").is_file()


@router.get("/dashboard")
async def dashboard_redirect() -> RedirectResponse:
    # Relative asset URLs in the page resolve against /dashboard/.
    return RedirectResponse("/dashboard/", status_code=307)


@router.get("/dashboard/")
async def dashboard_page() -> FileResponse:
    return FileResponse(
        web_dir() / "index.html",
        media_type="text/html; charset=utf-8",
        headers={"Cache-Control": "no-cache"},
    )


@router.get("/dashboard/config.json")
async def dashboard_config(request: Request) -> JSONResponse:
    return JSONResponse(
        {
            "screening_url": request.app.state.dashboard_screening_url,
            "charts": vendor_ready(),
        },
        headers={"Cache-Control": "no-cache"},
    )


def install_dashboard(app: FastAPI, *, screening_url: str) -> None:
    """Serve the dashboard page and its assets from the casework app."""
    app.state.dashboard_screening_url = screening_url.rstrip("/")
    app.include_router(router)
    app.mount(
        "/dashboard/assets",
        StaticFiles(directory=web_dir() / "assets", check_dir=False),
        name="dashboard-assets",
    )
